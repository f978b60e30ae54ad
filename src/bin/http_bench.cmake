# http_bench_server: a trivial 200 "ok" server for load-testing src/http
# (wrk -t2 -c32 -d5s http://127.0.0.1:PORT/).
gust_bench(http_bench_server SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_bench_server.cc LIBS gust_http)

# gust-sandbox-init: the sandbox zygote (logic in src/sandbox/zygote_server.cc).
add_executable(gust-sandbox-init ${CMAKE_CURRENT_LIST_DIR}/gust_sandbox_init.cc)
target_link_libraries(gust-sandbox-init PRIVATE gust_sandbox_zygote gust_sandbox gust_embed_python)
set_target_properties(gust-sandbox-init PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)

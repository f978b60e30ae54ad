// http_bench_server: serves 200 "ok" on every request, for measuring the
// overhead of gust's HTTP layer alone.
//
//   http_bench_server [port=7799] [threads=1]
//   wrk -t2 -c32 -d5s http://127.0.0.1:7799/
//
// With one thread the io_context gets concurrency_hint 1, so connections run
// without strands, which is how the engine runs its API server.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bin/guarded_main.h"
#include "http/server.h"

namespace {

int Run(int argc, char** argv) {
  namespace http = gust::http;
  int port = argc > 1 ? std::atoi(argv[1]) : 7799;
  int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  if (port < 0 || port > 65535 || threads < 1) {
    std::fprintf(stderr, "usage: %s [port] [threads]\n", argv[0]);
    return 2;
  }
  boost::asio::io_context io(threads == 1 ? 1 : threads);
  http::ServerOptions options;
  options.port = static_cast<uint16_t>(port);
  http::Server server(
      io, options,
      [](http::Request&&, http::Responder responder) {
        responder.Send(http::MakeResponse(http::beast_http::status::ok, "ok", "text/plain"));
      },
      nullptr);
  gust::Status status = server.Start();
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u with %d thread(s)\n", server.port(), threads);
  std::fflush(stdout);

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { server.Stop(); });

  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : workers) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return gust::GuardedMain("http_bench_server", Run, argc, argv); }

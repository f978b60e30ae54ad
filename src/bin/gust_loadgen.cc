// gust-loadgen: a closed-loop HTTP/1.1 load generator for gust's benchmarks.
// N connections (one thread each, keep-alive, blocking sockets) send the same
// request back to back for a duration; prints one JSON line with the request
// count, rate and latency percentiles. Kept minimal so that on a 2-core box it
// costs less CPU than the engine it measures.
//
//   gust-loadgen --port 7700 --path /2015-03-31/functions/f/invocations
//                --method POST --body '{}' --connections 4 --duration 5
//                [-H 'X-Amz-Invocation-Type: Event']
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "bin/guarded_main.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Worker {
  std::vector<uint32_t> latencies_us;
  uint64_t errors = 0;
  uint64_t non_2xx = 0;
};

int Connect(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Reads one response; returns the status code or -1. Handles Content-Length only
// (gust always sends it).
int ReadResponse(int fd, std::string& buf) {
  size_t header_end;
  for (;;) {
    header_end = buf.find("\r\n\r\n");
    if (header_end != std::string::npos) break;
    char tmp[65536];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(n));
  }
  int status = std::atoi(buf.c_str() + 9);
  size_t length = 0;
  std::string headers = buf.substr(0, header_end);
  std::transform(headers.begin(), headers.end(), headers.begin(), ::tolower);
  if (auto p = headers.find("content-length:"); p != std::string::npos) {
    length = std::strtoul(headers.c_str() + p + 15, nullptr, 10);
  }
  size_t total = header_end + 4 + length;
  while (buf.size() < total) {
    char tmp[65536];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(n));
  }
  buf.erase(0, total);
  return status;
}

int Run(int argc, char** argv) {
  CLI::App app{"gust-loadgen: closed-loop HTTP load generator"};
  std::string host = "127.0.0.1", path = "/", method = "GET", body;
  std::vector<std::string> headers;
  int port = 7700, connections = 1;
  double duration = 5, warmup = 0.5;
  app.add_option("--host", host);
  app.add_option("--port", port);
  app.add_option("--path", path);
  app.add_option("--method", method);
  app.add_option("--body", body);
  app.add_option("--header,-H", headers, "Extra request header \"Name: value\" (repeatable)");
  app.add_option("--connections,-c", connections);
  app.add_option("--duration,-d", duration, "Seconds to measure");
  app.add_option("--warmup", warmup, "Seconds to run before measuring");
  CLI11_PARSE(app, argc, argv);

  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + host + ":" +
                        std::to_string(port) + "\r\nContent-Type: application/json\r\n";
  for (const std::string& h : headers) request += h + "\r\n";
  request += std::string() + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::atomic<bool> measuring{false}, stop{false};
  std::vector<Worker> workers(static_cast<size_t>(connections));
  std::vector<std::thread> threads;
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back([&, i] {
      Worker& w = workers[static_cast<size_t>(i)];
      w.latencies_us.reserve(1 << 20);
      std::string buf;
      int fd = Connect(host, port);
      while (!stop.load(std::memory_order_relaxed)) {
        if (fd < 0) {
          ++w.errors;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          fd = Connect(host, port);
          continue;
        }
        auto start = Clock::now();
        if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
          ::close(fd);
          fd = -1;
          continue;
        }
        int status = ReadResponse(fd, buf);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
        if (status < 0) {
          ::close(fd);
          fd = Connect(host, port);
          buf.clear();
          if (measuring) ++w.errors;
          continue;
        }
        if (!measuring) continue;
        if (status < 200 || status >= 300) ++w.non_2xx;
        w.latencies_us.push_back(static_cast<uint32_t>(us.count()));
      }
      if (fd >= 0) ::close(fd);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  measuring = true;
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(duration));
  measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& t : threads) t.join();

  std::vector<uint32_t> all;
  uint64_t errors = 0, non_2xx = 0;
  for (auto& w : workers) {
    all.insert(all.end(), w.latencies_us.begin(), w.latencies_us.end());
    errors += w.errors;
    non_2xx += w.non_2xx;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    size_t idx = std::min(all.size() - 1, static_cast<size_t>(p / 100.0 * all.size()));
    return all[idx] / 1000.0;
  };
  std::printf(
      "{\"requests\": %zu, \"seconds\": %.3f, \"rps\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, "
      "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"errors\": %llu, \"non_2xx\": %llu, "
      "\"connections\": %d}\n",
      all.size(), elapsed, all.size() / elapsed, pct(50), pct(90), pct(99), pct(100),
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(non_2xx),
      connections);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return gust::GuardedMain("gust-loadgen", Run, argc, argv); }

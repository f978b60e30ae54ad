// Microbenchmarks of the runtime protocol. BM_WarmRoundTrip drives the REAL
// Python runtime (runtimes/python, no sandbox) with a no-op handler over a
// socketpair through RuntimeChannel: INVOKE out, RESULT back. That is the
// floor of gust's warm invoke latency; the HTTP layer and the engine add to it.
//
// Run: build/bin/protocol_bench [--benchmark_min_time=3]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <vector>

#include "runtime/protocol.h"
#include "runtime/python_runtime_testing.h"

namespace gust::runtime {
namespace {

void BM_EncodeInvoke(benchmark::State& state) {
  InvokeMeta meta{"8f5a0c4e-3b7d-4b8e-9a51-1f2e3d4c5b6a", 1764000000000,
                  "arn:aws:lambda:us-east-1:000000000000:function:f", ""};
  const std::string payload = R"({"key1": "value1", "key2": "value2"})";
  for (auto _ : state) benchmark::DoNotOptimize(EncodeInvoke(meta, payload));
}
BENCHMARK(BM_EncodeInvoke);

void BM_DecodeHeader(benchmark::State& state) {
  const std::string frame = EncodeFrame(FrameType::kResult, "null");
  const auto* header = reinterpret_cast<const uint8_t*>(frame.data());
  for (auto _ : state) benchmark::DoNotOptimize(DecodeHeader(header, kMaxFrameBody));
}
BENCHMARK(BM_DecodeHeader);

void BM_WarmRoundTrip(benchmark::State& state) {
  testing::PythonRuntimeProcess process;
  if (!process.Start({{"app.py", "def handler(event, context):\n    return None\n"}}, "app.handler")
           .ok()) {
    state.SkipWithError("cannot start the Python runtime");
    return;
  }
  boost::asio::io_context io;
  std::optional<RuntimeChannel> channel;
  channel.emplace(io, process.TakeEngineFd());

  bool ok = true;
  auto read_one = [&](FrameType want) {
    channel->ReadFrame([&, want](Result<Frame> r) {
      if (!r.ok() || r->type != want) ok = false;
    });
  };
  read_one(FrameType::kReady);
  io.run();
  io.restart();
  if (!ok) {
    state.SkipWithError("runtime did not report READY");
    return;
  }

  InvokeMeta meta{"8f5a0c4e-3b7d-4b8e-9a51-1f2e3d4c5b6a", 0,
                  "arn:aws:lambda:us-east-1:000000000000:function:f", ""};
  meta.deadline_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() +
                     3'600'000;
  const std::string payload = R"({"key1": "value1"})";
  std::vector<double> samples_us;
  samples_us.reserve(1 << 20);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    // Encoding is part of the engine's per-invoke cost, so it is timed too.
    channel->Write(EncodeInvoke(meta, payload), [&](const Status& s) { ok = ok && s.ok(); });
    read_one(FrameType::kResult);
    io.run();
    io.restart();
    samples_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (!ok) {
      state.SkipWithError("round trip failed");
      break;
    }
  }
  if (!samples_us.empty()) {
    std::sort(samples_us.begin(), samples_us.end());
    state.counters["p50_us"] = samples_us[samples_us.size() / 2];
    state.counters["p99_us"] = samples_us[samples_us.size() * 99 / 100];
    state.counters["round_trips/s"] =
        benchmark::Counter(static_cast<double>(samples_us.size()), benchmark::Counter::kIsRate);
  }
  channel.reset();  // EOF: the runtime exits 0
  auto code = process.Wait(10000);
  if (!code.ok() || *code != 0) state.SkipWithError("runtime did not exit cleanly");
}
BENCHMARK(BM_WarmRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace gust::runtime

BENCHMARK_MAIN();

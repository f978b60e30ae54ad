// The cost of SigV4 verification on the invoke path (bench/RESULTS.md):
// Verify of a signed Invoke request by body size, and the client's Sign.
#include <benchmark/benchmark.h>

#include <string>

#include "http/sigv4.h"

namespace gust::http::sigv4 {
namespace {

constexpr int64_t kNow = 1'765'000'000;
const Credentials kCreds{"GKBENCHKEY0000000000", "bench/secret+0123456789abcdefghijklmnopq"};

Request SignedInvoke(size_t body_bytes) {
  const std::string target = "/2015-03-31/functions/bench-fn/invocations";
  Request req(beast_http::verb::post, target, 11);
  req.set(beast_http::field::host, "127.0.0.1:7700");
  req.set(beast_http::field::content_type, "application/json");
  req.set(beast_http::field::user_agent, "Boto3/1.34 md/Botocore#1.34 ua/2.0 os/linux");
  req.body() = std::string(body_bytes, 'x');
  std::string hash = Sha256Hex(req.body());
  SignInput in;
  in.method = "POST";
  in.target = target;
  in.host = "127.0.0.1:7700";
  in.payload_hash = hash;
  in.extra = {{"content-type", "application/json"}};
  in.now_s = kNow;
  for (const auto& [name, value] : Sign(kCreds, in)) req.set(name, value);
  return req;
}

void BM_Verify(benchmark::State& state) {
  Request req = SignedInvoke(static_cast<size_t>(state.range(0)));
  Verifier verifier({kCreds}, [] { return kNow; });
  const std::vector<std::string> services = {kService};
  for (auto _ : state) {
    auto refusal = verifier.Verify(req, services);
    if (refusal) state.SkipWithError(refusal->message.c_str());
    benchmark::DoNotOptimize(refusal);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Verify)->Arg(0)->Arg(1 << 10)->Arg(256 << 10)->Arg(6 << 20);

void BM_Sign(benchmark::State& state) {
  std::string hash = Sha256Hex("{}");
  for (auto _ : state) {
    SignInput in;
    in.method = "POST";
    in.target = "/2015-03-31/functions/bench-fn/invocations";
    in.host = "127.0.0.1:7700";
    in.payload_hash = hash;
    in.now_s = kNow;
    benchmark::DoNotOptimize(Sign(kCreds, in));
  }
}
BENCHMARK(BM_Sign);

}  // namespace
}  // namespace gust::http::sigv4

BENCHMARK_MAIN();

#include "engine/testing/engine_harness.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace gust::engine::testing {

namespace {
constexpr auto kRealBudget = std::chrono::seconds(10);
}  // namespace

EngineHarness::EngineHarness(EngineConfig config) : config_(std::move(config)) {
  config_.state_dir = dir_.path();
  auto opened = OpenSqliteMetadataStore(dir_ / "meta.db");
  if (!opened.ok()) {
    ADD_FAILURE() << opened.status().ToString();
    std::abort();
  }
  store = std::move(opened).value();
  auto blob_store = OpenFileBlobStore(dir_ / "blobs");
  if (!blob_store.ok()) {
    ADD_FAILURE() << blob_store.status().ToString();
    std::abort();
  }
  blobs = std::move(blob_store).value();
  bundles = std::make_unique<BundleCache>(dir_ / "bundles");
  logs = std::make_unique<LogSink>(dir_ / "logs");
  invoker = std::make_unique<Invoker>(io, config_, *store, *blobs, *bundles, launcher, *logs);
  invoker->Start();
}

// The io_context does not run again: what is still queued on it (exit
// reports, commits of components the test built on top and already
// destroyed) is dropped with it, never run against freed objects.
EngineHarness::~EngineHarness() {
  invoker->Shutdown();
  invoker.reset();
}

FunctionConfig EngineHarness::CreateFunction(const std::string& name,
                                             const std::function<void(FunctionConfig&)>& edit) {
  FunctionConfig c;
  c.name = name;
  c.handler = "app.handler";
  c.code_sha256 = std::string(64, 'a');
  c.revision_id = "r1";
  if (edit) edit(c);
  // The Invoker only checks that the bundle is extracted; the fake never reads it.
  std::filesystem::create_directories(bundles->DirOf(c.code_sha256));
  Status st = store->CreateFunction(c);
  EXPECT_TRUE(st.ok()) << st.ToString();
  invoker->FunctionChanged(name, Invoker::Change::kLatest);
  return c;
}

void EngineHarness::SetReservedConcurrency(const std::string& name, int limit) {
  FunctionSettings settings;
  settings.reserved_concurrency = limit;
  Status st = store->PutSettings(name, settings);
  EXPECT_TRUE(st.ok()) << st.ToString();
  invoker->FunctionChanged(name, Invoker::Change::kRouting);
}

bool EngineHarness::RunUntil(const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + kRealBudget;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return true;
}

void EngineHarness::Settle() {
  // A few reactor rounds: with a ManualClock active timers are re-checked every
  // kManualClockPoll (1 ms) of real time.
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  while (std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
}

void EngineHarness::Advance(std::chrono::milliseconds by) {
  clock.Advance(by);
  Settle();
}

std::shared_ptr<std::optional<InvokeResponse>> EngineHarness::Invoke(InvokeRequest request) {
  auto slot = std::make_shared<std::optional<InvokeResponse>>();
  invoker->Invoke(std::move(request), [slot](InvokeResponse r) { *slot = std::move(r); });
  return slot;
}

InvokeResponse EngineHarness::InvokeAndWait(InvokeRequest request) {
  auto slot = Invoke(std::move(request));
  EXPECT_TRUE(RunUntil([&] { return slot->has_value(); })) << "the invocation never answered";
  return slot->has_value() ? std::move(**slot) : InvokeResponse{};
}

std::string EngineHarness::Log(const std::string& function) {
  logs->Flush();
  auto chunk = LogSink::Read(logs->dir(), function, 0, 0, 1 << 20);
  return chunk.ok() ? chunk->text : "";
}

InvokeRequest Request(const std::string& function, std::string payload) {
  InvokeRequest r;
  r.function = function;
  r.payload = std::move(payload);
  return r;
}

}  // namespace gust::engine::testing

// EngineHarness: an Invoker with everything real but its sandboxes, for
// in-process tests of the engine core: SQLite metadata, a blob store, a
// bundle cache and a log sink in a temporary state dir, a FakeLauncher
// (fake_launcher.h) and a ManualClock (common/clock.h), so timeouts,
// keep-alives, back-offs and schedules run in fake time that only the test
// moves. Other components (AsyncInvoker, Gateway, Scheduler) are built by the
// tests on top of io, invoker, logs and the state dir.
//
// Errors: setup failures abort the test (gtest assertions in the .cc).
//
// Thread-safety: single-threaded, the test's thread runs the io_context.
// Test-only.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/config.h"
#include "engine/invoker.h"
#include "engine/log_sink.h"
#include "engine/testing/fake_launcher.h"
#include "store/blob_store.h"
#include "store/code_bundle.h"
#include "store/metadata_store.h"
#include "store/test_util.h"

namespace gust::engine::testing {

class EngineHarness {
 public:
  // Starts the Invoker (its reaper runs every config.reaper_interval_ms of fake time).
  explicit EngineHarness(EngineConfig config = {});
  // Shuts the Invoker down; the io_context is not run again, so a test ends
  // its held invocations first (one still pending pins its session: a leak
  // under ASan).
  ~EngineHarness();
  EngineHarness(const EngineHarness&) = delete;
  EngineHarness& operator=(const EngineHarness&) = delete;

  // Creates function `name` ($LATEST, handler app.handler) with an extracted
  // (empty) bundle; edit adjusts its configuration first.
  FunctionConfig CreateFunction(const std::string& name,
                                const std::function<void(FunctionConfig&)>& edit = nullptr);
  void SetReservedConcurrency(const std::string& name, int limit);

  // Runs the io_context until pred() holds; false (the test fails) after
  // 10 s of real time, so a broken engine fails the test instead of hanging it.
  bool RunUntil(const std::function<bool()>& pred);
  // Runs whatever is ready or comes due within a few real milliseconds (used
  // to check that something did not happen).
  void Settle();
  // Moves the fake clock and runs what came due.
  void Advance(std::chrono::milliseconds by);

  // Invoker::Invoke; the response lands in the returned slot.
  std::shared_ptr<std::optional<InvokeResponse>> Invoke(InvokeRequest request);
  // Invoke and run until it answers (fails the test if it does not).
  InvokeResponse InvokeAndWait(InvokeRequest request);
  // Everything written to a function's log so far.
  std::string Log(const std::string& function);

  const EngineConfig& config() const { return config_; }
  const std::string& state_dir() const { return dir_.path(); }

  // Declaration order is construction order: the clock before any timer, the
  // io_context outliving everything that posts to it.
  gust::testing::ManualClock clock;
  boost::asio::io_context io;

 private:
  EngineConfig config_;
  store_testing::TempDir dir_;

 public:
  std::unique_ptr<MetadataStore> store;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<BundleCache> bundles;
  std::unique_ptr<LogSink> logs;
  FakeLauncher launcher{io};
  std::unique_ptr<Invoker> invoker;
};

// A request for function (payload "{}" unless given).
InvokeRequest Request(const std::string& function, std::string payload = "{}");

}  // namespace gust::engine::testing

// AsyncInvoker on the fake launcher and a real SQLite event queue: retries
// with Lambda's back-off, the dead-letter store and OnFailure destinations,
// throttles that are not attempts -- the back-offs elapse in fake time.
#include "engine/async_invoker.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/function_feed.h"
#include "engine/testing/engine_harness.h"
#include "store/arn.h"

namespace gust::engine {
namespace {

using namespace std::chrono_literals;
using testing::EngineHarness;
using testing::InvokeSeen;
using testing::Reply;
using testing::Request;

class AsyncInvokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto queue = OpenSqliteEventQueue(h_.state_dir() + "/queue.db", /*fsync_commits=*/false);
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::move(queue).value();
    async_ = std::make_unique<AsyncInvoker>(h_.io, h_.config(), *h_.invoker, *queue_, *h_.store);
    if (membership_live_) async_->UseClusterLeases(membership_live_);
    ASSERT_TRUE(async_->Start().ok());
  }
  void TearDown() override {
    async_->Shutdown();
    h_.Settle();
  }

  std::string Enqueue(const std::string& function, const std::string& payload) {
    AsyncEvent event;
    event.function = function;
    event.payload = payload;
    std::optional<Result<std::string>> accepted;
    async_->Enqueue(event, [&](Result<std::string> id) { accepted = std::move(id); });
    EXPECT_TRUE(h_.RunUntil([&] { return accepted.has_value(); }));
    EXPECT_TRUE(accepted && accepted->ok());
    return accepted && accepted->ok() ? **accepted : "";
  }
  size_t Calls(const std::string& function) {
    size_t n = 0;
    for (const InvokeSeen& seen : h_.launcher.invocations()) n += seen.function == function;
    return n;
  }

  EngineHarness h_;
  std::function<bool()> membership_live_;  // set before SetUp: cluster mode
  std::unique_ptr<EventQueue> queue_;
  std::unique_ptr<AsyncInvoker> async_;
};

TEST_F(AsyncInvokerTest, SucceedsOnce) {
  h_.CreateFunction("f");
  std::string id = Enqueue("f", R"({"n": 1})");
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().succeeded == 1; }));
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().running == 0; }));
  auto record = queue_->Get(id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->status, EventStatus::kSucceeded);
  EXPECT_EQ(record->response, R"({"n": 1})");
  ASSERT_EQ(Calls("f"), 1u);
  EXPECT_EQ(h_.launcher.invocations()[0].request_id, id) << "runs under the accepted id";
}

TEST_F(AsyncInvokerTest, RetriesWithBackoffThenDeadLetters) {
  h_.CreateFunction("f");
  h_.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Error("ValueError", "no"); });
  std::string id = Enqueue("f", "{}");
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().retried == 1; }));
  EXPECT_EQ(Calls("f"), 1u);
  // Lambda's back-off: the first retry a minute later (async_retry_base_ms)...
  h_.Advance(59'000ms);
  EXPECT_EQ(Calls("f"), 1u) << "retried before its back-off";
  h_.Advance(1000ms);
  ASSERT_TRUE(h_.RunUntil([&] { return Calls("f") == 2; }));
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().retried == 2; }));
  // ... the second two minutes after that.
  h_.Advance(119'000ms);
  EXPECT_EQ(Calls("f"), 2u);
  h_.Advance(1000ms);
  ASSERT_TRUE(h_.RunUntil([&] { return Calls("f") == 3; }));
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().dead_lettered == 1; }));
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().running == 0; }));
  for (const InvokeSeen& seen : h_.launcher.invocations()) EXPECT_EQ(seen.request_id, id);

  auto record = queue_->Get(id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->status, EventStatus::kDeadLettered);
  EXPECT_EQ(record->condition, "RetriesExhausted");
  EXPECT_EQ(record->event.attempts, 3);
  EXPECT_NE(record->response.find("ValueError"), std::string::npos);
  h_.Advance(600'000ms);
  EXPECT_EQ(Calls("f"), 3u) << "a dead-lettered event never runs again";
}

TEST_F(AsyncInvokerTest, OnFailureDestinationGetsTheRecord) {
  h_.CreateFunction("f");
  h_.CreateFunction("dlq");
  EventInvokeConfig config;
  config.function = "f";
  config.max_retry_attempts = 0;
  config.on_failure = FunctionArn("dlq");
  ASSERT_TRUE(h_.store->PutEventInvokeConfig(config).ok());
  h_.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Crash(SIGSEGV); });
  std::string id = Enqueue("f", R"({"order": 7})");
  ASSERT_TRUE(h_.RunUntil([&] { return Calls("dlq") == 1; }));
  EXPECT_EQ(Calls("f"), 1u) << "MaximumRetryAttempts 0";
  std::string payload;
  for (const InvokeSeen& seen : h_.launcher.invocations())
    if (seen.function == "dlq") payload = seen.payload;
  auto doc = nlohmann::json::parse(payload, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << payload;
  EXPECT_EQ(doc["requestContext"]["requestId"], id);
  EXPECT_EQ(doc["requestContext"]["condition"], "RetriesExhausted");
  EXPECT_EQ(doc["requestPayload"]["order"], 7);
  EXPECT_EQ(doc["responsePayload"]["errorType"], "Runtime.ExitError");
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().failed == 1; }));
  ASSERT_TRUE(h_.RunUntil(
      [&] { return queue_->Get(id).ok() && queue_->Get(id)->status == EventStatus::kFailed; }));
}

TEST_F(AsyncInvokerTest, ThrottleIsNotAnAttempt) {
  h_.CreateFunction("f");
  h_.SetReservedConcurrency("f", 1);
  h_.launcher.SetHandler("f", [](const InvokeSeen& seen) {
    return seen.payload == "\"sync\"" ? Reply::Hold() : Reply::Result("\"done\"");
  });
  // A synchronous call holds f's only slot: the event is throttled, not failed.
  auto sync = h_.Invoke(Request("f", "\"sync\""));
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.Holding().size() == 1; }));
  std::string id = Enqueue("f", "\"async\"");
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().throttled >= 1; }));
  h_.Advance(20ms);  // the first throttle back-off
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().throttled >= 2; }));
  EXPECT_EQ(async_->stats().retried, 0u);
  ASSERT_TRUE(h_.launcher.Answer(h_.launcher.Holding()[0], Reply::Result("1")));
  ASSERT_TRUE(h_.RunUntil([&] { return sync->has_value(); }));
  h_.Advance(1000ms);  // past the longest throttle back-off
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().succeeded == 1; }));
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().running == 0; }));
  auto record = queue_->Get(id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->status, EventStatus::kSucceeded);
  EXPECT_EQ(record->event.attempts, 1) << "throttles are not attempts";
}

// Cluster mode over the same SQLite queue: the leasing rules, not PostgreSQL's (those are
// store_test's and tests/cluster's).
class ClusterAsyncInvokerTest : public AsyncInvokerTest {
 protected:
  void SetUp() override {
    membership_live_ = [this] { return live_; };
    AsyncInvokerTest::SetUp();
  }
  bool live_ = false;
};

TEST_F(ClusterAsyncInvokerTest, LeasesOnlyFreeCapacityAndNothingWhileMembershipIsNotLive) {
  h_.CreateFunction("f");
  h_.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Hold(); });
  const size_t capacity = static_cast<size_t>(h_.config().async_concurrency);
  const size_t n = capacity * 3;
  for (size_t i = 0; i < n; ++i) Enqueue("f", "{}");  // accepted: the queue takes them
  h_.Advance(1000ms);                                 // polls come due
  EXPECT_EQ(Calls("f"), 0u) << "nothing starts while the membership is not live";
  EXPECT_EQ(async_->stats().resident, 0u) << "nothing is leased either";
  live_ = true;
  h_.Advance(500ms);
  size_t most = 0;
  while (async_->stats().succeeded < n) {
    ASSERT_TRUE(h_.RunUntil(
        [&] { return !h_.launcher.Holding().empty() || async_->stats().succeeded == n; }));
    most = std::max(most, async_->stats().resident);
    for (const auto& held : h_.launcher.Holding()) {
      ASSERT_TRUE(h_.launcher.Answer(held, Reply::Result("1")));
    }
    h_.Advance(500ms);  // the next poll of the queue
  }
  EXPECT_EQ(most, capacity) << "it leases what it can run, not the backlog";
  EXPECT_EQ(Calls("f"), n);
}

TEST_F(ClusterAsyncInvokerTest, AbandonsRunningEventsWhenTheMembershipLapses) {
  live_ = true;
  h_.CreateFunction("f");
  h_.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Hold(); });
  std::string id = Enqueue("f", "{}");
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.Holding().size() == 1; }));
  // Its lease lapses with the membership: another node may run it now, so this one must not.
  live_ = false;
  h_.Advance(500ms);  // the membership's next check, whatever else the dispatcher waits for
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().running == 0; }));
  EXPECT_EQ(h_.launcher.kills(), 1) << "the running event's sandbox is killed";
  EXPECT_EQ(async_->stats().succeeded + async_->stats().retried + async_->stats().failed, 0u)
      << "an abandoned run records no outcome";
  auto record = queue_->Get(id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->status, EventStatus::kQueued) << "given back to the queue";
  EXPECT_EQ(record->event.attempts, 0) << "an abandoned run is not an attempt";
  // Live again (nobody took it meanwhile): leased afresh and run once more.
  h_.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Result("1"); });
  live_ = true;
  h_.Advance(500ms);
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().succeeded == 1; }));
  EXPECT_EQ(Calls("f"), 2u);
}

TEST_F(ClusterAsyncInvokerTest, ADrainingNodeFinishesWhatRunsAndLeasesNothingMore) {
  h_.CreateFunction("f");
  h_.launcher.SetHandler("f", [](const InvokeSeen&) { return Reply::Hold(); });
  live_ = true;
  const size_t n = static_cast<size_t>(h_.config().async_concurrency) * 3;
  for (size_t i = 0; i < n; ++i) Enqueue("f", "{}");
  h_.Advance(500ms);  // a poll of the queue leases what it can run
  ASSERT_TRUE(h_.RunUntil([&] { return !h_.launcher.Holding().empty(); }));
  async_->Drain();
  const size_t started = Calls("f");
  Enqueue("f", "{}");  // still accepted: into the queue, for the other nodes
  for (const auto& held : h_.launcher.Holding()) {
    ASSERT_TRUE(h_.launcher.Answer(held, Reply::Result("1")));
  }
  h_.Advance(2000ms);  // four polls of the queue
  ASSERT_TRUE(h_.RunUntil([&] { return async_->stats().succeeded == started; }));
  EXPECT_EQ(Calls("f"), started) << "nothing new starts on a draining node";
  EXPECT_LT(started, n);
  EXPECT_EQ(async_->stats().running, 0u);
  EXPECT_EQ(async_->stats().resident, 0u) << "what it leased and had not started went back";
  EXPECT_EQ(async_->stats().accepted, n + 1);
}

// A node that served a call right after a deploy made elsewhere, then read the deploy's
// changes from the feed (a new function's routing row, then its first $LATEST, in one
// commit): its resolution already has that revision, so it keeps it, and the next call
// needs no database (here: the function's rows are gone from the store, as unreachable as
// a database across a partition). A routing change after it still drops it.
TEST_F(AsyncInvokerTest, AFeedBatchKeepsAResolutionThatAlreadyHasItsRevision) {
  h_.CreateFunction("f");
  InvokeResponse first = h_.InvokeAndWait(Request("f", "1"));
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  std::string revision = h_.invoker->CachedRevision("f", kLatest);
  ASSERT_FALSE(revision.empty());
  ASSERT_TRUE(h_.store->DeleteFunction("f").ok());

  ApplyFunctionChanges(
      {{1, "f", FunctionChangeKind::kRouting, ""}, {2, "f", FunctionChangeKind::kLatest, revision}},
      *h_.invoker, *async_);
  EXPECT_EQ(h_.invoker->CachedRevision("f", kLatest), revision);
  InvokeResponse warm = h_.InvokeAndWait(Request("f", "2"));
  ASSERT_TRUE(warm.status.ok()) << warm.status.ToString();
  EXPECT_FALSE(warm.cold);
  EXPECT_EQ(warm.sandbox_id, first.sandbox_id);

  // A later routing change (an alias, concurrency) is not reflected: it drops it.
  ApplyFunctionChanges(
      {{2, "f", FunctionChangeKind::kLatest, revision}, {3, "f", FunctionChangeKind::kRouting, ""}},
      *h_.invoker, *async_);
  EXPECT_EQ(h_.invoker->CachedRevision("f", kLatest), "");
  InvokeResponse gone = h_.InvokeAndWait(Request("f", "3"));
  EXPECT_EQ(gone.status.code(), Code::kNotFound) << gone.status.ToString();
}

}  // namespace
}  // namespace gust::engine

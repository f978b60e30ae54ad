#include "store/event_queue.h"

#include <gtest/gtest.h>

#include <latch>
#include <set>
#include <thread>

#include "store/metadata_store.h"
#include "store/pg_testing.h"

namespace gust {
namespace {

using store_testing::Backend;
using store_testing::BackendName;
using store_testing::BackendTest;

AsyncEvent Event(const std::string& id, int64_t due, const std::string& fn = "f") {
  AsyncEvent e;
  e.id = id;
  e.function = fn;
  e.payload = "{\"id\": \"" + id + "\"}";
  e.source = "invoke";
  e.enqueued_ms = due;
  e.due_ms = due;
  return e;
}

EventWrite Insert(AsyncEvent e, bool resident = false) {
  EventWrite w;
  w.kind = EventWrite::Kind::kInsert;
  w.event = std::move(e);
  w.resident = resident;
  return w;
}

std::vector<std::string> Ids(const LeasedPage& page) {
  std::vector<std::string> out;
  for (const auto& e : page.events) out.push_back(e.id);
  return out;
}

// The EventQueue contract, against SQLite and PostgreSQL (pg_testing.h); for PostgreSQL,
// "resident" is a lease held by the node the queue was opened as.
class EventQueueTest : public BackendTest {
 protected:
  // A queue on the test's database; postgres: as node `node`, leasing for lease_ms.
  std::unique_ptr<EventQueue> Open(const std::string& node = "n1", int64_t lease_ms = 10'000) {
    auto r = backend() == Backend::kPostgres ? OpenPgEventQueue(conninfo_, node, 1, lease_ms)
                                             : OpenSqliteEventQueue(dir_ / "queue.db");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<MetadataStore> OpenMetadata() {
    auto r = backend() == Backend::kPostgres ? OpenPgMetadataStore(conninfo_)
                                             : OpenSqliteMetadataStore(dir_ / "metadata.db");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, EventQueueTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

class PgEventQueueTest : public EventQueueTest {
 protected:
  Backend backend() const override { return Backend::kPostgres; }
};

EventWrite Finish(const std::string& id) {
  EventWrite w;
  w.kind = EventWrite::Kind::kFinish;
  w.event.id = id;
  w.status = EventStatus::kSucceeded;
  w.response = "done";
  w.at_ms = 2000;
  return w;
}

TEST_F(PgEventQueueTest, NodesLeasingAtOnceNeverShareAnEvent) {
  constexpr int kNodes = 4;
  constexpr int kEvents = 200;
  std::vector<std::unique_ptr<EventQueue>> nodes;
  for (int i = 0; i < kNodes; ++i) {
    nodes.push_back(Open("n" + std::to_string(i)));
    ASSERT_NE(nodes.back(), nullptr);
  }
  std::vector<EventWrite> inserts;
  for (int i = 0; i < kEvents; ++i) inserts.push_back(Insert(Event("e" + std::to_string(i), i)));
  ASSERT_TRUE(nodes[0]->Commit(inserts).ok());
  std::vector<std::vector<std::string>> leased(kNodes);
  std::latch start(kNodes);
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      while (true) {
        auto page = nodes[static_cast<size_t>(i)]->Lease(1000, 7, 1 << 20);
        if (!page.ok() || page->events.empty()) break;
        for (const auto& e : page->events) leased[static_cast<size_t>(i)].push_back(e.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::multiset<std::string> all;
  for (const auto& ids : leased) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), size_t{kEvents});
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), size_t{kEvents});  // once each
}

TEST_F(PgEventQueueTest, AnExpiredLeaseIsTakenOverAndTheStaleHoldersWritesChangeNothing) {
  auto a = Open("a", /*lease_ms=*/1000);
  auto b = Open("b", /*lease_ms=*/1000);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Commit({Insert(Event("e", 50))}).ok());
  EXPECT_EQ(Ids(*a->Lease(100, 10, 1 << 20)), (std::vector<std::string>{"e"}));  // until 1100
  auto early = b->Lease(500, 10, 1 << 20);
  EXPECT_TRUE(early->events.empty());
  EXPECT_EQ(early->next_due_ms, 1101);  // when a's lease has run out
  EXPECT_EQ(Ids(*b->Lease(1200, 10, 1 << 20)), (std::vector<std::string>{"e"}));
  // a (cut off, late) reports the event done: b holds it now, so nothing changes, and the
  // write is reported fenced (the dispatcher logs it).
  std::vector<std::string> fenced;
  ASSERT_TRUE(a->Commit({Finish("e")}, &fenced).ok());
  EXPECT_EQ(fenced, (std::vector<std::string>{"e"}));
  EXPECT_EQ(b->Get("e")->status, EventStatus::kQueued);
  ASSERT_TRUE(b->Commit({Finish("e")}, &fenced).ok());
  EXPECT_TRUE(fenced.empty());
  EXPECT_EQ(b->Get("e")->status, EventStatus::kSucceeded);
  // Once b has recorded the outcome, a later write of a's changes nothing either: the event's
  // outcome is recorded once.
  EventWrite late = Finish("e");
  late.status = EventStatus::kDeadLettered;
  ASSERT_TRUE(a->Commit({late}, &fenced).ok());
  EXPECT_EQ(fenced, (std::vector<std::string>{"e"}));
  EXPECT_EQ(b->Get("e")->status, EventStatus::kSucceeded);
}

TEST_F(PgEventQueueTest, ARenewedLeaseIsNotTakenOverAndALostOneIsNotTakenBack) {
  auto a = Open("a", /*lease_ms=*/1000);
  auto b = Open("b", /*lease_ms=*/1000);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Commit({Insert(Event("long", 1))}).ok());
  EXPECT_EQ(Ids(*a->Lease(100, 10, 1 << 20)), (std::vector<std::string>{"long"}));  // to 1100
  EXPECT_EQ(*a->RenewLeases(900), 1);                                               // to 1900
  auto early = b->Lease(1500, 10, 1 << 20);
  EXPECT_TRUE(early->events.empty());
  EXPECT_EQ(early->next_due_ms, 1901);
  // Not renewed again (a cut off): b takes it over, and a's late renewal does not take it back.
  EXPECT_EQ(Ids(*b->Lease(2000, 10, 1 << 20)), (std::vector<std::string>{"long"}));
  EXPECT_EQ(*a->RenewLeases(2100), 0);
  EXPECT_EQ(Ids(*a->Lease(2200, 10, 1 << 20)), std::vector<std::string>{});  // b's until 3000
}

TEST_F(PgEventQueueTest, ReleaseAllReleasesOnlyThisNodesLeases) {
  auto a = Open("a");
  auto b = Open("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Commit({Insert(Event("x", 1)), Insert(Event("y", 2))}).ok());
  EXPECT_EQ(Ids(*a->Lease(10, 1, 1 << 20)), (std::vector<std::string>{"x"}));
  EXPECT_EQ(Ids(*b->Lease(10, 1, 1 << 20)), (std::vector<std::string>{"y"}));
  ASSERT_TRUE(a->ReleaseAll().ok());  // a restarted
  EXPECT_EQ(Ids(*b->Lease(10, 10, 1 << 20)), (std::vector<std::string>{"x"}));
}

TEST_P(EventQueueTest, LeaseHandsOutDueNonResidentEventsOnceInDueOrder) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->Commit({Insert(Event("a", 100)), Insert(Event("b", 50)),
                         Insert(Event("c", 100), /*resident=*/true), Insert(Event("d", 500))})
                  .ok());
  auto page = q->Lease(200, 10, 1 << 20);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"b", "a"}));  // c is resident, d not due
  EXPECT_EQ(page->next_due_ms, 500);
  auto again = q->Lease(200, 10, 1 << 20);
  EXPECT_TRUE(again->events.empty());
  // A restart releases everything: all four come back (d only once due).
  ASSERT_TRUE(q->ReleaseAll().ok());
  EXPECT_EQ(Ids(*q->Lease(1000, 10, 1 << 20)), (std::vector<std::string>{"b", "a", "c", "d"}));
}

TEST_P(EventQueueTest, LeaseRespectsCountAndBytesButAlwaysGivesOne) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(
      q->Commit({Insert(Event("a", 1)), Insert(Event("b", 2)), Insert(Event("c", 3))}).ok());
  EXPECT_EQ(Ids(*q->Lease(10, 2, 1 << 20)), (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(q->ReleaseAll().ok());
  EXPECT_EQ(Ids(*q->Lease(10, 10, 1)), (std::vector<std::string>{"a"}));
}

TEST_P(EventQueueTest, DuplicateIdsAreIgnored) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  AsyncEvent tick = Event("tick-1", 5);
  ASSERT_TRUE(q->Commit({Insert(tick)}).ok());
  tick.payload = "{\"other\": 1}";
  ASSERT_TRUE(q->Commit({Insert(tick)}).ok());
  EXPECT_EQ(q->Get("tick-1")->event.payload, "{\"id\": \"tick-1\"}");
  EXPECT_EQ(q->Counts()->queued, 1);
}

TEST_P(EventQueueTest, RequeueFinishDeadLetterAndRedrive) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->Commit({Insert(Event("ok", 1), true), Insert(Event("bad", 1), true)}).ok());

  EventWrite done;
  done.kind = EventWrite::Kind::kFinish;
  done.event.id = "ok";
  done.event.attempts = 0;
  done.status = EventStatus::kSucceeded;
  done.response = std::string(kMaxStoredResponseBytes + 10, 'x');
  done.at_ms = 20;
  EventWrite retry;
  retry.kind = EventWrite::Kind::kRequeue;
  retry.event.id = "bad";
  retry.event.attempts = 1;
  retry.event.due_ms = 60'000;
  retry.response = R"({"errorType":"ValueError"})";
  retry.at_ms = 20;
  ASSERT_TRUE(q->Commit({done, retry}).ok());

  auto ok = q->Get("ok");
  EXPECT_EQ(ok->status, EventStatus::kSucceeded);
  EXPECT_TRUE(ok->response_truncated);
  EXPECT_EQ(ok->response.size(), kMaxStoredResponseBytes);
  auto bad = q->Get("bad");
  EXPECT_EQ(bad->status, EventStatus::kQueued);
  EXPECT_EQ(bad->event.attempts, 1);
  EXPECT_EQ(bad->last_attempt_ms, 20);
  // The retry is paged back in only once due.
  EXPECT_TRUE(q->Lease(59'999, 10, 1 << 20)->events.empty());
  EXPECT_EQ(Ids(*q->Lease(60'000, 10, 1 << 20)), (std::vector<std::string>{"bad"}));

  EventWrite dead = retry;
  dead.kind = EventWrite::Kind::kFinish;
  dead.status = EventStatus::kDeadLettered;
  dead.condition = "RetriesExhausted";
  dead.event.attempts = 3;
  dead.at_ms = 200'000;
  ASSERT_TRUE(q->Commit({dead}).ok());
  auto letters = q->DeadLetters("f", 100);
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].condition, "RetriesExhausted");
  EXPECT_EQ((*letters)[0].event.attempts, 3);
  EXPECT_TRUE(q->DeadLetters("other", 100)->empty());

  EXPECT_EQ(*q->Redrive("f", {"nope"}, 300'000), 0);
  EXPECT_EQ(*q->Redrive("f", {}, 300'000), 1);
  auto back = q->Get("bad");
  EXPECT_EQ(back->status, EventStatus::kQueued);
  EXPECT_EQ(back->event.attempts, 0);
  EXPECT_EQ(back->event.enqueued_ms, 300'000);
  EXPECT_EQ(back->event.source, "redrive");
  EXPECT_EQ(Ids(*q->Lease(300'000, 10, 1 << 20)), (std::vector<std::string>{"bad"}));

  EXPECT_EQ(*q->PurgeFinished(21), 1);  // "ok" finished at 20
  EXPECT_EQ(q->Get("ok").status().code(), Code::kNotFound);
  auto counts = q->Counts();
  EXPECT_EQ(counts->queued, 1);
  EXPECT_EQ(counts->succeeded, 0);
}

TEST_P(EventQueueTest, ReleaseSendsAResidentEventBackToDiskUntilDue) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  AsyncEvent e = Event("paused", 1);
  e.attempts = 1;
  ASSERT_TRUE(q->Commit({Insert(e, true)}).ok());
  EventWrite release;
  release.kind = EventWrite::Kind::kRelease;
  release.event.id = "paused";
  release.event.due_ms = 500;
  ASSERT_TRUE(q->Commit({release}).ok());
  EXPECT_TRUE(q->Lease(499, 10, 1 << 20)->events.empty());
  auto page = q->Lease(500, 10, 1 << 20);
  ASSERT_EQ(Ids(*page), (std::vector<std::string>{"paused"}));
  EXPECT_EQ(page->events[0].attempts, 1);  // not an attempt
}

TEST_P(EventQueueTest, LeaseSkipsPausedFunctions) {
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->Commit({Insert(Event("p1", 1, "paused")), Insert(Event("o1", 2, "other")),
                         Insert(Event("p2", 3, "paused"))})
                  .ok());
  auto page = q->Lease(10, 10, 1 << 20, {"paused"});
  EXPECT_EQ(Ids(*page), (std::vector<std::string>{"o1"}));
  EXPECT_FALSE(page->next_due_ms.has_value());  // the paused function's events do not count
  EXPECT_EQ(Ids(*q->Lease(10, 10, 1 << 20)), (std::vector<std::string>{"p1", "p2"}));
}

TEST_P(EventQueueTest, SurvivesReopen) {
  {
    auto q = Open();
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(q->Commit({Insert(Event("kept", 1), true)}).ok());
  }
  auto q = Open();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->ReleaseAll().ok());
  EXPECT_EQ(Ids(*q->Lease(10, 10, 1 << 20)), (std::vector<std::string>{"kept"}));
}

TEST_P(EventQueueTest, EventInvokeConfigsPutGetListDeleteAndCascade) {
  auto store = OpenMetadata();
  ASSERT_NE(store, nullptr);
  EventInvokeConfig c;
  c.function = "f";
  c.max_retry_attempts = 1;
  EXPECT_EQ(store->PutEventInvokeConfig(c).code(), Code::kNotFound);
  FunctionConfig f;
  f.name = "f";
  f.handler = "app.handler";
  f.code_sha256 = "00";
  ASSERT_TRUE(store->CreateFunction(f).ok());
  ASSERT_TRUE(store->PutEventInvokeConfig(c).ok());
  auto got = store->GetEventInvokeConfig("f", "");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->qualifier, "$LATEST");
  EXPECT_EQ(got->max_retry_attempts, 1);
  EXPECT_FALSE(got->max_event_age_s.has_value());
  EXPECT_GT(got->last_modified_ms, 0);
  auto missing = store->GetEventInvokeConfig("f", "prod");
  EXPECT_EQ(missing.status().message(),
            "The function arn:aws:lambda:us-east-1:000000000000:function:f:prod doesn't have an "
            "EventInvokeConfig");
  EXPECT_EQ(store->ListEventInvokeConfigs("f")->size(), 1u);
  ASSERT_TRUE(store->DeleteEventInvokeConfig("f", "$LATEST").ok());
  EXPECT_EQ(store->DeleteEventInvokeConfig("f", "$LATEST").code(), Code::kNotFound);
  ASSERT_TRUE(store->PutEventInvokeConfig(c).ok());
  ASSERT_TRUE(store->DeleteFunction("f").ok());
  ASSERT_TRUE(store->CreateFunction(f).ok());
  EXPECT_EQ(store->GetEventInvokeConfig("f", "").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace gust

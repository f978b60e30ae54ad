// NodeStore (cluster membership) against a real PostgreSQL (pg_testing.h): Join's epochs, a
// name held by a live node elsewhere, heartbeats of a superseded start refused, a node dead
// once its lease ran out, a rejoin as the next epoch, Leave, the schema check `gust up --cluster`
// makes, warm counts in heartbeats and the cluster credential.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store/node_store.h"
#include "store/pg_schema.h"
#include "store/pg_testing.h"

namespace gust {
namespace {

class PgNodeStoreTest : public store_testing::PgClusterTest {
 protected:
  std::unique_ptr<NodeStore> Open(int64_t lease_ms = 10'000) {
    auto r = OpenPgNodeStore(conninfo_, lease_ms);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  static NodeInfo Node(const std::string& name, const std::string& url) {
    NodeInfo info;
    info.name = name;
    info.advertise_url = url;
    info.version = "test";
    info.cores = 2;
    info.memory_mb = 4096;
    info.memory_free_mb = 1024;
    info.load1 = 0.5;
    return info;
  }

  static const NodeRow* Find(const std::vector<NodeRow>& rows, const std::string& name) {
    for (const NodeRow& row : rows) {
      if (row.info.name == name) return &row;
    }
    return nullptr;
  }
};

TEST_F(PgNodeStoreTest, JoinCountsEpochsAndListShowsWhatNodesPublish) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a->Join(Node("a", "http://a:1")), 1);
  EXPECT_EQ(*b->Join(Node("b", "http://b:1")), 1);
  NodeInfo busier = Node("b", "http://b:1");
  busier.load1 = 1.75;
  ASSERT_TRUE(b->Heartbeat(busier).ok());
  auto rows = a->List();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  const NodeRow* row = Find(*rows, "b");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->state, "up");
  EXPECT_EQ(row->info.advertise_url, "http://b:1");
  EXPECT_EQ(row->info.cores, 2);
  EXPECT_EQ(row->info.memory_mb, 4096);
  EXPECT_DOUBLE_EQ(row->info.load1, 1.75);
  EXPECT_GT(row->deadline_in_ms, 5'000);
  // The same node starting again (same address, its lease still running) is the next epoch.
  auto again = Open();
  EXPECT_EQ(*again->Join(Node("b", "http://b:1")), 2);
  EXPECT_EQ(again->epoch(), 2);
}

TEST_F(PgNodeStoreTest, ANameHeldByALiveNodeElsewhereIsRefused) {
  auto a = Open();
  ASSERT_TRUE(a && a->Join(Node("n", "http://one:1")).ok());
  auto b = Open();
  auto clash = b->Join(Node("n", "http://two:1"));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), Code::kConflict);
  EXPECT_NE(clash.status().message().find("held by a live node at http://one:1"), std::string::npos)
      << clash.status().message();
  // Once it left, the name is free for another address.
  ASSERT_TRUE(a->Leave().ok());
  EXPECT_EQ(*b->Join(Node("n", "http://two:1")), 2);
}

TEST_F(PgNodeStoreTest, ASupersededStartsHeartbeatsAndLeaveAreRefused) {
  auto old_start = Open();
  auto new_start = Open();
  ASSERT_TRUE(old_start->Join(Node("n", "http://n:1")).ok());
  ASSERT_TRUE(new_start->Join(Node("n", "http://n:1")).ok());
  Status beat = old_start->Heartbeat(Node("n", "http://n:1"));
  EXPECT_EQ(beat.code(), Code::kConflict) << beat.ToString();
  EXPECT_EQ(old_start->Leave().code(), Code::kConflict);
  EXPECT_TRUE(new_start->Heartbeat(Node("n", "http://n:1")).ok());
}

TEST_F(PgNodeStoreTest, ANodeIsDeadOnceItsLeaseRanOutAndStoppedAfterLeave) {
  auto quick = Open(/*lease_ms=*/1000);
  auto other = Open();
  ASSERT_TRUE(quick->Join(Node("quick", "http://q:1")).ok());
  ASSERT_TRUE(other->Join(Node("other", "http://o:1")).ok());
  EXPECT_EQ(Find(*other->List(), "quick")->state, "up");
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  auto rows = other->List();
  EXPECT_EQ(Find(*rows, "quick")->state, "dead");
  EXPECT_LT(Find(*rows, "quick")->deadline_in_ms, 0);
  // A renewal brings it back (it was only late); Leave is final.
  ASSERT_TRUE(quick->Heartbeat(Node("quick", "http://q:1")).ok());
  EXPECT_EQ(Find(*other->List(), "quick")->state, "up");
  ASSERT_TRUE(quick->Leave().ok());
  EXPECT_EQ(Find(*other->List(), "quick")->state, "stopped");
  EXPECT_EQ(quick->Heartbeat(Node("quick", "http://q:1")).code(), Code::kConflict);
}

TEST_F(PgNodeStoreTest, ARejoinIsTheNextEpochKeepsTheStateAndFencesTheOldOne) {
  auto node = Open();
  auto other = Open();
  ASSERT_TRUE(node->Join(Node("n", "http://n:1")).ok());
  ASSERT_TRUE(node->Join(Node("n", "http://n:1")).ok());  // a restart: epoch 2
  ASSERT_TRUE(other->Drain("n").ok());
  auto rejoined = node->Rejoin(Node("n", "http://n:1"));
  ASSERT_TRUE(rejoined.ok()) << rejoined.status().ToString();
  EXPECT_EQ(*rejoined, 3);
  EXPECT_EQ(node->epoch(), 3);
  auto rows = other->List();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  const NodeRow* row = Find(*rows, "n");  // into rows: a temporary's would dangle
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->epoch, 3);
  EXPECT_EQ(row->state, "draining");  // a draining node rejoins draining
  EXPECT_GT(row->deadline_in_ms, 0);
  EXPECT_TRUE(node->Heartbeat(Node("n", "http://n:1")).ok());  // as epoch 3
  // A later start of the name supersedes it: its rejoin is refused like its heartbeats.
  auto restart = Open();
  ASSERT_TRUE(restart->Join(Node("n", "http://n:1")).ok());
  EXPECT_EQ(node->Rejoin(Node("n", "http://n:1")).status().code(), Code::kConflict);
  EXPECT_EQ(Find(*other->List(), "n")->epoch, 4);
}

TEST_F(PgNodeStoreTest, InitKeepsTheFirstCredentialAndTheSchemaCheckNamesBothVersions) {
  auto again = InitPgCluster(conninfo_, "GKOTHER", "other");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->created_credential);
  EXPECT_EQ(again->access_key_id, "GKTEST");
  EXPECT_EQ(again->schema_from, pg_schema::kSchemaVersion);
  EXPECT_TRUE(CheckPgClusterSchema(conninfo_).ok());
  auto db = pg::Connection::Open(conninfo_, "test");
  ASSERT_TRUE(db.ok());
  const std::string ours = std::to_string(pg_schema::kSchemaVersion);
  ASSERT_TRUE((*db)->Exec(("DELETE FROM schema_version WHERE version = " + ours).c_str()).ok());
  Status older = CheckPgClusterSchema(conninfo_);
  EXPECT_EQ(older.code(), Code::kConflict);
  EXPECT_NE(older.message().find("schema version " + std::to_string(pg_schema::kSchemaVersion - 1) +
                                 ", older than this gust's (" + ours + ")"),
            std::string::npos)
      << older.message();
  ASSERT_TRUE((*db)->Exec("INSERT INTO schema_version VALUES (99)").ok());
  Status newer = CheckPgClusterSchema(conninfo_);
  EXPECT_NE(newer.message().find("schema version 99, newer than this gust's (" + ours + ")"),
            std::string::npos)
      << newer.message();
}

TEST_F(PgNodeStoreTest, HeartbeatsPublishWarmCountsAndFreeSlots) {
  auto a = Open();
  ASSERT_TRUE(a);
  NodeInfo info = Node("a", "http://a:1");
  ASSERT_TRUE(a->Join(info).ok());
  EXPECT_EQ(Find(*a->List(), "a")->info.warm, "{}");  // none before the first beat
  info.warm = R"({"f":{"$LATEST":2}})";
  info.free_slots = 7;
  ASSERT_TRUE(a->Heartbeat(info).ok());
  auto rows = a->List();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  const NodeRow* row = Find(*rows, "a");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->info.warm, info.warm);
  EXPECT_EQ(row->info.free_slots, 7);
}

TEST_F(PgNodeStoreTest, TheClusterCredentialIsInitsFirst) {
  auto a = Open();
  ASSERT_TRUE(a);
  auto key = a->ClusterCredential();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->first, "GKTEST");
  EXPECT_EQ(key->second, "secret");
  auto db = pg::Connection::Open(conninfo_, "test");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec("DELETE FROM cluster_credentials").ok());
  EXPECT_EQ(a->ClusterCredential().status().code(), Code::kNotFound);
}

TEST_F(PgNodeStoreTest, DrainMarksALiveNodeAndNamesWhatItCannotDrain) {
  auto a = Open();
  auto b = Open();
  auto gone = Open();
  ASSERT_TRUE(a && b && gone);
  ASSERT_TRUE(a->Join(Node("a", "http://a:1")).ok());
  ASSERT_TRUE(b->Join(Node("b", "http://b:1")).ok());
  ASSERT_TRUE(gone->Join(Node("gone", "http://g:1")).ok());
  ASSERT_TRUE(gone->Leave().ok());
  // Any node records another's drain; the drained node's heartbeats keep the state and
  // publish what still runs there.
  auto drained = b->Drain("a");
  ASSERT_TRUE(drained.ok()) << drained.status().ToString();
  EXPECT_EQ(drained->state, "draining");
  NodeInfo busy = Node("a", "http://a:1");
  busy.activity = R"({"invocations":2})";
  ASSERT_TRUE(a->Heartbeat(busy).ok());
  auto rows = b->List();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  const NodeRow* row = Find(*rows, "a");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->state, "draining");
  EXPECT_EQ(row->info.activity, R"({"invocations":2})");
  EXPECT_TRUE(b->Drain("a").ok());  // again: still draining
  auto unknown = b->Drain("nobody");
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  EXPECT_NE(unknown.status().message().find("'nobody'"), std::string::npos);
  auto stopped = b->Drain("gone");
  EXPECT_EQ(stopped.status().code(), Code::kConflict);
  EXPECT_NE(stopped.status().message().find("gone is stopped"), std::string::npos)
      << stopped.status().message();
  // Leaving ends a drain, and a restart joins as up.
  ASSERT_TRUE(a->Leave().ok());
  EXPECT_EQ(Find(*b->List(), "a")->state, "stopped");
  ASSERT_TRUE(a->Join(Node("a", "http://a:1")).ok());
  EXPECT_EQ(Find(*b->List(), "a")->state, "up");
}

}  // namespace
}  // namespace gust

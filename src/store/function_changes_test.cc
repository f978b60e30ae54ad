// FunctionChangeFeed against a real PostgreSQL (pg_testing.h): every kind of write to the
// function tables through PgMetadataStore appears as a change of the right kind, in commit
// order; a change is not seen before its writer commits; a waiting reader is woken by a
// commit on another connection; a reader whose session was killed fails once as Unavailable,
// then reads what it missed and listens again; Prune deletes old changes only.
#include "store/function_changes.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "store/metadata_store.h"
#include "store/node_store.h"
#include "store/pg_testing.h"
#include "store/pg_util.h"

namespace gust {
namespace {

using namespace std::chrono_literals;
using Kind = FunctionChangeKind;

class FunctionChangeFeedTest : public store_testing::PgClusterTest {
 protected:
  void SetUp() override {
    PgClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto store = OpenPgMetadataStore(conninfo_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto feed = OpenPgFunctionChangeFeed(conninfo_);
    ASSERT_TRUE(feed.ok()) << feed.status().ToString();
    feed_ = std::move(feed).value();
  }

  static FunctionConfig Config(const std::string& name, const std::string& sha = "aaaa") {
    FunctionConfig c;
    c.name = name;
    c.handler = "app.handler";
    c.role = "arn:aws:iam::000000000000:role/r";
    c.memory_mb = 128;
    c.timeout_s = 3;
    c.code_sha256 = sha;
    return c;
  }

  // (function, kind) of every change after `after`.
  std::vector<std::pair<std::string, Kind>> ChangesAfter(int64_t after) {
    auto changes = feed_->Since(after, 1000);
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    std::vector<std::pair<std::string, Kind>> out;
    if (!changes.ok()) return out;
    int64_t last = after;
    for (const FunctionChange& c : *changes) {
      EXPECT_GT(c.seq, last);
      last = c.seq;
      out.emplace_back(c.function, c.kind);
    }
    return out;
  }

  // The revisions of the changes after `after`, in order.
  std::vector<std::string> RevisionsAfter(int64_t after) {
    std::vector<std::string> out;
    auto changes = feed_->Since(after, 1000);
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    if (changes.ok()) {
      for (const FunctionChange& c : changes.value()) out.push_back(c.revision);
    }
    return out;
  }

  int64_t Head() {
    auto head = feed_->Head();
    EXPECT_TRUE(head.ok()) << head.status().ToString();
    return head.ok() ? *head : -1;
  }

  std::unique_ptr<MetadataStore> store_;
  std::unique_ptr<FunctionChangeFeed> feed_;
};

TEST_F(FunctionChangeFeedTest, EveryWriteToAFunctionIsAChangeOfItsKind) {
  EXPECT_EQ(Head(), 0);
  ASSERT_TRUE(store_->CreateFunction(Config("f")).ok());
  // The function row (routing: nothing can have cached it) and its $LATEST, with the
  // revision a node that resolves it from now on reads.
  EXPECT_EQ(ChangesAfter(0), (std::vector<std::pair<std::string, Kind>>{{"f", Kind::kRouting},
                                                                        {"f", Kind::kLatest}}));
  EXPECT_EQ(RevisionsAfter(0),
            (std::vector<std::string>{"", store_->GetFunction("f", kLatest)->revision_id}));

  int64_t at = Head();
  FunctionConfig latest = store_->GetFunction("f", kLatest).value();
  latest.code_sha256 = "bbbb";
  ASSERT_TRUE(store_->UpdateLatest(latest, latest.revision_id).ok());
  EXPECT_EQ(ChangesAfter(at), (std::vector<std::pair<std::string, Kind>>{{"f", Kind::kLatest}}));
  std::string updated = store_->GetFunction("f", kLatest)->revision_id;
  EXPECT_NE(updated, latest.revision_id);
  EXPECT_EQ(RevisionsAfter(at), std::vector<std::string>{updated});

  // Routing: a published version, an alias, concurrency, async settings.
  at = Head();
  ASSERT_TRUE(store_->PublishVersion("f", "v1").ok());
  AliasConfig alias;
  alias.function = "f";
  alias.name = "live";
  alias.version = "1";
  ASSERT_TRUE(store_->CreateAlias(alias).ok());
  FunctionSettings settings;
  settings.reserved_concurrency = 3;
  ASSERT_TRUE(store_->PutSettings("f", settings).ok());
  EventInvokeConfig eic;
  eic.function = "f";
  eic.max_retry_attempts = 0;
  ASSERT_TRUE(store_->PutEventInvokeConfig(eic).ok());
  auto routing = ChangesAfter(at);
  ASSERT_GE(routing.size(), size_t{4});
  for (const auto& [function, kind] : routing) {
    EXPECT_EQ(function, "f");
    EXPECT_EQ(kind, Kind::kRouting);
  }
  for (const std::string& revision : RevisionsAfter(at)) EXPECT_EQ(revision, "");

  // A deleted version, then the function (its versions, alias and settings go with it).
  ASSERT_TRUE(store_->DeleteAlias("f", "live").ok());
  at = Head();
  ASSERT_TRUE(store_->DeleteVersion("f", "1").ok());
  EXPECT_EQ(ChangesAfter(at), (std::vector<std::pair<std::string, Kind>>{{"f", Kind::kDeleted}}));
  at = Head();
  ASSERT_TRUE(store_->CreateFunction(Config("g")).ok());
  ASSERT_TRUE(store_->DeleteFunction("f").ok());
  auto deleted = ChangesAfter(at);
  bool f_deleted = false;
  for (const auto& [function, kind] : deleted) {
    if (function == "f") {
      f_deleted = f_deleted || kind == Kind::kDeleted;
    } else {
      EXPECT_EQ(function, "g");
    }
  }
  EXPECT_TRUE(f_deleted);
  // Reading from the last seq seen returns nothing more.
  EXPECT_TRUE(ChangesAfter(Head()).empty());
}

TEST_F(FunctionChangeFeedTest, AChangeIsSeenAtItsCommitAndWakesAWaitingReader) {
  ASSERT_FALSE(feed_->Wait(1ms).value());  // listening now; nothing pending
  auto writer = pg::Connection::Open(conninfo_, "writer");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Exec("BEGIN").ok());
  ASSERT_TRUE((*writer)->Exec("INSERT INTO functions(name, next_version) VALUES ('h', 1)").ok());
  // Uncommitted: neither visible nor notified.
  EXPECT_TRUE(ChangesAfter(0).empty());
  EXPECT_FALSE(feed_->Wait(50ms).value());
  auto committer = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(100ms);
    return (*writer)->Exec("COMMIT").status();
  });
  auto started = std::chrono::steady_clock::now();
  auto woke = feed_->Wait(5s);
  auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(committer.get().ok());
  ASSERT_TRUE(woke.ok()) << woke.status().ToString();
  EXPECT_TRUE(*woke);
  EXPECT_LT(waited, 4s);  // woken by the commit, not by the timeout
  EXPECT_EQ(ChangesAfter(0), (std::vector<std::pair<std::string, Kind>>{{"h", Kind::kRouting}}));
}

TEST_F(FunctionChangeFeedTest, AReaderWhoseSessionDiedCatchesUpAndListensAgain) {
  ASSERT_FALSE(feed_->Wait(1ms).value());
  auto admin = pg::Connection::Open(conninfo_, "admin");
  ASSERT_TRUE(admin.ok());
  // Every other session of this test's database: the feed's and the store's.
  auto killed = (*admin)->Exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "current_setting('application_name') AND pid <> pg_backend_pid()");
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  // Written while the reader had no session: its notification went nowhere.
  auto store = OpenPgMetadataStore(conninfo_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->CreateFunction(Config("missed")).ok());

  auto lost = feed_->Wait(2s);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), Code::kUnavailable) << lost.status().ToString();
  auto missed = ChangesAfter(0);  // reconnects
  ASSERT_FALSE(missed.empty());
  EXPECT_EQ(missed.front().first, "missed");
  // Listening again on the new session: the next commit wakes it.
  ASSERT_FALSE(feed_->Wait(1ms).value());
  ASSERT_TRUE((*store)->CreateFunction(Config("next")).ok());
  auto woke = feed_->Wait(5s);
  ASSERT_TRUE(woke.ok()) << woke.status().ToString();
  EXPECT_TRUE(*woke);
}

TEST_F(FunctionChangeFeedTest, PruneDeletesOnlyOldChanges) {
  ASSERT_TRUE(store_->CreateFunction(Config("old")).ok());
  int64_t old_head = Head();
  auto admin = pg::Connection::Open(conninfo_, "admin");
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->Exec("UPDATE function_changes SET at = now() - interval '2 hours'").ok());
  ASSERT_TRUE(store_->CreateFunction(Config("new")).ok());
  ASSERT_TRUE(feed_->Prune(std::chrono::hours(1)).ok());
  auto left = ChangesAfter(0);
  ASSERT_FALSE(left.empty());
  for (const auto& [function, kind] : left) EXPECT_EQ(function, "new");
  EXPECT_GT(Head(), old_head);
}

}  // namespace
}  // namespace gust

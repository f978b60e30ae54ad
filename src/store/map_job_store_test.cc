// MapJobStore (a map job's durable state in cluster mode) against a real PostgreSQL
// (pg_testing.h): inputs round-trip across pieces, results are appended in order and read
// after a seq, a takeover has exactly one winner among racing nodes, the old owner's writes
// are fenced off, and done jobs expire.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "store/map_job_store.h"
#include "store/node_store.h"
#include "store/pg_testing.h"

namespace gust {
namespace {

class PgMapJobStoreTest : public store_testing::PgClusterTest {
 protected:
  void SetUp() override {
    PgClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = Open();
  }

  std::unique_ptr<MapJobStore> Open() {
    auto r = OpenPgMapJobStore(conninfo_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  static MapJobRow Job(const std::string& id, const std::string& owner = "n1", int64_t epoch = 1) {
    MapJobRow job;
    job.id = id;
    job.function = "gust-map-abc";
    job.options = R"({"retries":2})";
    job.owner = owner;
    job.owner_epoch = epoch;
    job.created_ms = 1000;
    job.ttl_ms = 60'000;
    return job;
  }

  static std::vector<MapResultRow> Results(uint64_t first, uint64_t count) {
    std::vector<MapResultRow> out;
    for (uint64_t s = first; s < first + count; ++s) {
      out.push_back({s, static_cast<uint32_t>(s * 10), "result " + std::to_string(s)});
    }
    return out;
  }

  std::unique_ptr<MapJobStore> store_;
};

TEST_F(PgMapJobStoreTest, CreateStoresTheRowAndTheInputsAcrossPieces) {
  // Three 1.5 MB tasks fill more than one 4 MB piece; empty and binary tasks survive.
  std::vector<std::string> tasks = {std::string("a\0b", 3), ""};
  for (int i = 0; i < 3; ++i) tasks.push_back(std::string(1'500'000, static_cast<char>('x' + i)));
  tasks.push_back("last");
  ASSERT_TRUE(store_->Create(Job("job-1"), tasks).ok());
  auto row = store_->Get("job-1");
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->function, "gust-map-abc");
  EXPECT_EQ(row->options, R"({"retries":2})");
  EXPECT_EQ(row->owner, "n1");
  EXPECT_EQ(row->owner_epoch, 1);
  EXPECT_EQ(row->state, "running");
  EXPECT_EQ(row->tasks, 6);
  EXPECT_EQ(row->ttl_ms, 60'000);
  auto inputs = store_->Inputs("job-1");
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  EXPECT_EQ(*inputs, tasks);

  Status again = store_->Create(Job("job-1"), {"x"});
  EXPECT_EQ(again.code(), Code::kConflict) << again.ToString();
  EXPECT_EQ(store_->Get("job-2").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Inputs("job-2").status().code(), Code::kNotFound);
}

TEST_F(PgMapJobStoreTest, ResultsAreAppendedInSeqOrderAndReadAfterASeq) {
  ASSERT_TRUE(store_->Create(Job("job-1"), {"a", "b"}).ok());
  ASSERT_TRUE(store_->AppendResults("job-1", "n1", 1, Results(1, 1500)).ok());
  ASSERT_TRUE(store_->AppendResults("job-1", "n1", 1, Results(1501, 3)).ok());

  auto all = store_->Results("job-1", 0, SIZE_MAX);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 1503u);
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].seq, i + 1);
    EXPECT_EQ((*all)[i].task, (i + 1) * 10);
  }
  auto tail = store_->Results("job-1", 1500, SIZE_MAX);
  ASSERT_EQ(tail->size(), 3u);
  EXPECT_EQ((*tail)[0].body, "result 1501");
  // max_bytes bounds the answer, but never below one result.
  auto some = store_->Results("job-1", 10, 25);
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[1].seq, 12u);
  EXPECT_EQ(store_->Results("job-1", 10, 1)->size(), 1u);
  EXPECT_TRUE(store_->Results("job-1", 1503, SIZE_MAX)->empty());

  // A gap or a seq stored already is refused, and nothing of that batch is written.
  Status gap = store_->AppendResults("job-1", "n1", 1, Results(1505, 2));
  EXPECT_EQ(gap.code(), Code::kConflict) << gap.ToString();
  EXPECT_NE(gap.message().find("1504 is next"), std::string::npos) << gap.message();
  EXPECT_EQ(store_->AppendResults("job-1", "n1", 1, Results(1503, 2)).code(), Code::kConflict);
  EXPECT_EQ(store_->Results("job-1", 0, SIZE_MAX)->size(), 1503u);
  std::vector<MapResultRow> skips = Results(1504, 3);
  skips[2].seq = 1507;
  EXPECT_EQ(store_->AppendResults("job-1", "n1", 1, skips).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Get("job-1")->stored, 1503);
  // A read that starts inside a stored batch gets the rest of it, then the next.
  auto inside = store_->Results("job-1", 1499, SIZE_MAX);
  ASSERT_EQ(inside->size(), 4u);
  EXPECT_EQ((*inside)[0].seq, 1500u);
  EXPECT_EQ((*inside)[1].body, "result 1501");
  EXPECT_EQ(store_->Results("job-9", 0, SIZE_MAX).status().code(), Code::kNotFound);
}

TEST_F(PgMapJobStoreTest, ExactlyOneOfRacingNodesTakesAJobOverAndTheOldOwnerIsFenced) {
  ASSERT_TRUE(store_->Create(Job("job-1", "n1", 3), {"a"}).ok());
  ASSERT_TRUE(store_->AppendResults("job-1", "n1", 3, Results(1, 2)).ok());
  constexpr int kNodes = 4;
  std::vector<std::unique_ptr<MapJobStore>> nodes;
  for (int i = 0; i < kNodes; ++i) nodes.push_back(Open());
  std::atomic<int> winners{0}, losers{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      auto won = nodes[i]->TakeOver("job-1", "n1", 3, "n" + std::to_string(i + 2), 7);
      if (won.ok() && *won) ++winners;
      if (won.ok() && !*won) ++losers;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(losers.load(), kNodes - 1);
  auto row = store_->Get("job-1");
  EXPECT_NE(row->owner, "n1");
  EXPECT_EQ(row->owner_epoch, 7);

  // The old owner's late writes change nothing.
  Status late = store_->AppendResults("job-1", "n1", 3, Results(3, 1));
  EXPECT_EQ(late.code(), Code::kConflict) << late.ToString();
  EXPECT_NE(late.message().find("it was taken over"), std::string::npos) << late.message();
  EXPECT_EQ(store_->Finish("job-1", "n1", 3, 5000).code(), Code::kConflict);
  // So does a restart of the old owner (same name, next epoch): ownership is per epoch.
  EXPECT_EQ(store_->AppendResults("job-1", "n1", 4, Results(3, 1)).code(), Code::kConflict);
  // The new owner continues after the stored results.
  ASSERT_TRUE(store_->AppendResults("job-1", row->owner, 7, Results(3, 1)).ok());
  EXPECT_EQ(store_->Results("job-1", 0, SIZE_MAX)->size(), 3u);
  EXPECT_EQ(store_->TakeOver("job-9", "n1", 3, "n2", 1).status().code(), Code::kNotFound);
}

TEST_F(PgMapJobStoreTest, RunningListsJobsNotDoneAndDoneJobsExpireAfterTheirTtl) {
  ASSERT_TRUE(store_->Create(Job("job-a"), {"a"}).ok());
  ASSERT_TRUE(store_->Create(Job("job-b", "n2", 5), {"b"}).ok());
  ASSERT_TRUE(store_->AppendResults("job-a", "n1", 1, Results(1, 1)).ok());
  auto running = store_->Running();
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  ASSERT_EQ(running->size(), 2u);
  EXPECT_EQ((*running)[1].owner, "n2");
  EXPECT_EQ((*running)[1].owner_epoch, 5);

  ASSERT_TRUE(store_->Finish("job-a", "n1", 1, 10'000).ok());
  EXPECT_EQ(store_->Get("job-a")->state, "done");
  EXPECT_EQ(store_->Get("job-a")->finished_ms, 10'000);
  EXPECT_EQ(store_->Running()->size(), 1u);
  // ttl 60 s after 10,000: kept at 70,000, gone after; a running job never expires.
  EXPECT_EQ(*store_->DeleteExpired(70'000), 0);
  EXPECT_EQ(*store_->DeleteExpired(70'001), 1);
  EXPECT_EQ(store_->Get("job-a").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Results("job-a", 0, SIZE_MAX).status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->Get("job-b").ok());

  ASSERT_TRUE(store_->Delete("job-b").ok());
  EXPECT_EQ(store_->Inputs("job-b").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->Delete("job-b").ok());  // nothing to delete is not an error
  // Inputs and results went with the rows (ON DELETE CASCADE).
  auto db = pg::Connection::Open(conninfo_, "test");
  ASSERT_TRUE(db.ok());
  auto left = (*db)->Exec(
      "SELECT (SELECT count(*) FROM map_job_inputs) + (SELECT count(*) FROM "
      "map_job_result_batches)");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->Int(0, 0), 0);
}

}  // namespace
}  // namespace gust

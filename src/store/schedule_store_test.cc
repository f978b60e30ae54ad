#include "store/schedule_store.h"

#include <gtest/gtest.h>

#include "store/pg_testing.h"

namespace gust {
namespace {

using store_testing::Backend;
using store_testing::BackendName;
using store_testing::BackendTest;

Schedule Make(const std::string& name, const std::string& group, const std::string& expr) {
  Schedule s;
  s.name = name;
  s.group = group;
  s.function = "f";
  s.expression = expr;
  s.anchor_ms = 1000;
  s.created_ms = 1000;
  s.updated_ms = 1000;
  return s;
}

// The ScheduleStore contract, against SQLite and PostgreSQL (pg_testing.h).
class ScheduleStoreTest : public BackendTest {
 protected:
  // A store on the test's database; a second call is a reopen (a restarted engine).
  std::unique_ptr<ScheduleStore> Open() {
    auto r = backend() == Backend::kPostgres ? OpenPgScheduleStore(conninfo_)
                                             : OpenSqliteScheduleStore(dir_ / "schedules.db");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ScheduleStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

TEST_P(ScheduleStoreTest, PutGetListDelete) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Make("b", "g1", "rate(1 minute)")).ok());
  ASSERT_TRUE(store->Put(Make("a", "g2", "cron(0 * * * ? *)")).ok());
  EXPECT_EQ(store->List("")->size(), 2u);
  EXPECT_EQ(store->List("g1")->at(0).name, "b");
  EXPECT_EQ(store->Get("a")->expression, "cron(0 * * * ? *)");
  EXPECT_EQ(store->Get("zz").status().code(), Code::kNotFound);
  // A name is unique across groups.
  EXPECT_EQ(store->Put(Make("b", "g2", "rate(2 minutes)")).code(), Code::kConflict);
  ASSERT_TRUE(store->Delete("b").ok());
  EXPECT_EQ(store->Delete("b").code(), Code::kNotFound);
}

TEST_P(ScheduleStoreTest, SameExpressionKeepsAnchorAndLastFire) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Make("s", "g", "rate(5 minutes)")).ok());
  ASSERT_TRUE(store->RecordFire("s", 301'000, "").ok());
  ASSERT_TRUE(store->RecordFire("s", 1'000, "late report").ok());  // never goes back
  Schedule again = Make("s", "g", "rate(5 minutes)");
  again.anchor_ms = 999'999;
  again.created_ms = 999'999;
  again.enabled = false;
  ASSERT_TRUE(store->Put(again).ok());
  auto got = store->Get("s");
  EXPECT_EQ(got->anchor_ms, 1000);
  EXPECT_EQ(got->created_ms, 1000);
  EXPECT_EQ(got->last_fire_ms, 301'000);
  EXPECT_FALSE(got->enabled);
  // A new time zone starts afresh, like a new expression.
  Schedule zoned = Make("s", "g", "rate(5 minutes)");
  zoned.timezone = "Europe/Berlin";
  zoned.anchor_ms = 7000;
  ASSERT_TRUE(store->Put(zoned).ok());
  EXPECT_EQ(store->Get("s")->anchor_ms, 7000);
  EXPECT_EQ(store->Get("s")->timezone, "Europe/Berlin");
  // A new expression starts afresh.
  Schedule changed = Make("s", "g", "rate(10 minutes)");
  changed.anchor_ms = 5000;
  ASSERT_TRUE(store->Put(changed).ok());
  EXPECT_EQ(store->Get("s")->anchor_ms, 5000);
  EXPECT_EQ(store->Get("s")->last_fire_ms, 0);
}

TEST_P(ScheduleStoreTest, ReplaceGroupIsWholeAndLeavesOtherGroups) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Make("keep", "g", "rate(1 hour)")).ok());
  ASSERT_TRUE(store->Put(Make("drop", "g", "rate(1 hour)")).ok());
  ASSERT_TRUE(store->Put(Make("other", "h", "rate(1 hour)")).ok());
  ASSERT_TRUE(store->RecordFire("keep", 3'601'000, "").ok());
  ASSERT_TRUE(store
                  ->ReplaceGroup(
                      "g", {Make("keep", "x", "rate(1 hour)"), Make("new", "x", "rate(2 hours)")})
                  .ok());
  auto g = store->List("g");
  ASSERT_EQ(g->size(), 2u);
  EXPECT_EQ(g->at(0).name, "keep");
  EXPECT_EQ(g->at(0).last_fire_ms, 3'601'000);
  EXPECT_EQ(g->at(1).name, "new");
  EXPECT_EQ(store->List("h")->size(), 1u);
  // A clash with another group's name changes nothing.
  EXPECT_EQ(store->ReplaceGroup("g", {Make("other", "g", "rate(1 hour)")}).code(), Code::kConflict);
  EXPECT_EQ(store->List("g")->size(), 2u);
  EXPECT_EQ(*store->DeleteGroup("g"), 2);
  EXPECT_EQ(store->List("")->size(), 1u);
}

TEST_P(ScheduleStoreTest, SurvivesReopen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(Make("s", "g", "rate(1 day)")).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get("s")->expression, "rate(1 day)");
}

}  // namespace
}  // namespace gust

#include "cli/stage_schedules.h"

#include <gtest/gtest.h>

namespace gust::cli {
namespace {

TEST(StageSchedules, KeepWarmAndEventsBecomeOneGroup) {
  auto stage = ParseStage(R"js({"dev": {"app_function": "app.app", "keep_warm": true,
      "keep_warm_expression": "rate(3 minutes)",
      "events": [{"function": "jobs.nightly", "expression": "cron(0 3 * * ? *)"},
                 {"function": "jobs.hourly", "expression": "rate(1 hour)", "name": "hourly",
                  "enabled": false}]}})js",
                          "gust_settings.json", "dev", "/tmp/shop");
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  nlohmann::json docs = StageScheduleDocuments(*stage)["schedules"];
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0]["name"], "shop-dev-keep-warm");
  EXPECT_EQ(docs[0]["kind"], "keep_warm");
  EXPECT_EQ(docs[0]["function"], "shop-dev");
  EXPECT_EQ(docs[0]["qualifier"], "live");  // schedules follow the live version
  EXPECT_EQ(docs[1]["qualifier"], "live");
  EXPECT_EQ(docs[0]["expression"], "rate(3 minutes)");
  // Zappa's handler reads the function from the rule name after the last '-'.
  EXPECT_EQ(docs[1]["name"], "shop-dev-jobs.nightly");
  EXPECT_EQ(docs[1]["kind"], "invoke");
  EXPECT_EQ(docs[1]["payload"]["gust_function"], "jobs.nightly");
  EXPECT_EQ(docs[1]["enabled"], true);
  EXPECT_EQ(docs[2]["name"], "hourly");
  EXPECT_EQ(docs[2]["enabled"], false);
}

// A version's schedules travel in its environment, so a rollback restores them.
TEST(StageSchedules, EnvRoundTrips) {
  auto stage = ParseStage(R"js({"dev": {"app_function": "app.app", "keep_warm": true,
      "events": [{"function": "jobs.hourly", "expression": "rate(1 hour)", "name": "hourly",
                  "enabled": false}]}})js",
                          "gust_settings.json", "dev", "/tmp/shop");
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  StageSettings back = *stage;
  back.keep_warm = false;
  back.events.clear();
  ASSERT_TRUE(SchedulesFromEnv(StageSchedulesEnv(*stage), &back).ok());
  EXPECT_EQ(StageScheduleDocuments(back), StageScheduleDocuments(*stage));
  Status bad = SchedulesFromEnv("[1]", &back);
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("GUST_STAGE_SCHEDULES"), std::string::npos);
}

TEST(StageSchedules, NoKeepWarmNoEventsIsAnEmptyGroup) {
  auto stage = ParseStage(R"({"dev": {"app_function": "app.app"}})", "gust_settings.json", "dev",
                          "/tmp/shop");
  ASSERT_TRUE(stage.ok());
  EXPECT_TRUE(StageScheduleDocuments(*stage)["schedules"].empty());
}

}  // namespace
}  // namespace gust::cli

#include "cli/settings.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace gust::cli {
namespace {

Result<StageSettings> Parse(const std::string& text, const std::string& stage = "dev",
                            const std::string& file = "/p/gust_settings.json") {
  return ParseStage(text, file, stage, "/tmp/myproj");
}

TEST(Settings, DefaultsAndFunctionName) {
  auto s = Parse(R"({"dev": {"app_function": "app.app"}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->app_function, "app.app");
  EXPECT_EQ(s->project_name, "myproj");
  EXPECT_EQ(s->function_name, "myproj-dev");
  EXPECT_EQ(s->memory_mb, 512);
  EXPECT_EQ(s->timeout_s, 30);
  EXPECT_FALSE(s->keep_warm);  // gust file: scale to zero by default
  EXPECT_FALSE(s->network);    // gust file: closed by default
  EXPECT_FALSE(s->from_zappa);
  EXPECT_TRUE(s->warnings.empty());
}

TEST(Settings, PythonIsMadeAbsoluteAgainstTheProjectNotResolved) {
  auto none = Parse(R"({"dev": {"app_function": "app.app"}})");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->python, "") << "the engine's own Python by default";
  auto rel = Parse(R"({"dev": {"app_function": "app.app", "python": ".venv/bin/python"}})");
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  EXPECT_EQ(rel->python, "/tmp/myproj/.venv/bin/python");
  EXPECT_TRUE(rel->warnings.empty());
  auto abs = Parse(R"({"dev": {"app_function": "app.app", "python": "/opt/env/bin/python"}})");
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->python, "/opt/env/bin/python");
  auto bad = Parse(R"({"dev": {"app_function": "app.app", "python": 3}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("python"), std::string::npos) << bad.status().ToString();
  EXPECT_EQ(PythonSetting("", "/p"), "");
  EXPECT_EQ(PythonSetting("../env/bin/python", "/p/proj"), "/p/env/bin/python");
}

TEST(Settings, AuthorizationIsNoneOrSigv4) {
  auto s = Parse(R"({"dev": {"app_function": "app.app"}})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->authorization, "none");
  s = Parse(R"({"dev": {"app_function": "app.app", "authorization": "sigv4"}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->authorization, "sigv4");
  s = Parse(R"({"dev": {"app_function": "app.app", "authorization": "AWS_IAM"}})");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("authorization"), std::string::npos);
  EXPECT_NE(s.status().message().find("\"sigv4\""), std::string::npos);
}

TEST(Settings, LimitsBeyondLambdasAreTheEnginesToJudge) {
  // Lambda's 900 s and 10240 MB do not apply: the engine deployed to checks
  // its own ceilings (gust up --max-timeout/--max-memory) and names them.
  auto s = Parse(R"({"dev": {"app_function": "app.app", "memory_size": 20480,
                             "timeout_seconds": 604800}})",
                 "dev", "/p/gust.json");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->memory_mb, 20480);
  EXPECT_EQ(s->timeout_s, 604800);
}

TEST(Settings, ZappaFileReadAsIs) {
  auto s = Parse(R"J({"production": {"app_function": "my_app.app", "aws_region": "us-east-1",
    "s3_bucket": "zappa-x", "slim_handler": true, "memory_size": 1024, "timeout_seconds": 60,
    "environment_variables": {"MODE": "prod"}, "keep_warm_expression": "rate(5 minutes)",
    "events": [{"function": "tasks.nightly", "expression": "cron(0 3 * * ? *)"}],
    "exclude": ["*.ipynb", "data/*"], "project_name": "timeapp"}})J",
                 "production", "/p/zappa_settings.json");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->from_zappa);
  EXPECT_TRUE(s->keep_warm);  // Zappa's default when the key is absent
  EXPECT_TRUE(s->network);    // a Lambda function has the internet
  EXPECT_EQ(s->keep_warm_expression, "rate(5 minutes)");
  EXPECT_EQ(s->function_name, "timeapp-production");
  EXPECT_EQ(s->memory_mb, 1024);
  EXPECT_EQ(s->timeout_s, 60);
  EXPECT_EQ(s->environment.at("MODE"), "prod");
  ASSERT_EQ(s->events.size(), 1u);
  EXPECT_EQ(s->events[0].function, "tasks.nightly");
  EXPECT_EQ(s->exclude.size(), 2u);
  // Three AWS-only keys, each named in a notice.
  ASSERT_EQ(s->warnings.size(), 3u);
  std::string all;
  for (const auto& w : s->warnings) all += w + "\n";
  EXPECT_NE(all.find("aws_region"), std::string::npos);
  EXPECT_NE(all.find("slim_handler"), std::string::npos);
  EXPECT_NE(all.find("s3_bucket"), std::string::npos);
}

TEST(Settings, UnknownKeysAreNamed) {
  auto s = Parse(R"({"dev": {"app_function": "app.app", "memroy_size": 256}})");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->warnings.size(), 1u);
  EXPECT_NE(s->warnings[0].find("memroy_size"), std::string::npos);
}

TEST(Settings, ExtendsMergesAndOwnKeysWin) {
  auto s = Parse(R"({"dev": {"app_function": "app.app", "memory_size": 256,
                             "environment_variables": {"A": "1"}},
                     "prod": {"extends": "dev", "memory_size": 1024}})",
                 "prod");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->memory_mb, 1024);
  EXPECT_EQ(s->app_function, "app.app");
  EXPECT_EQ(s->environment.at("A"), "1");
}

TEST(Settings, BadInputNamesTheProblem) {
  struct Case {
    const char* text;
    const char* stage;
    const char* expect;
  } cases[] = {
      {"not json", "dev", "not valid JSON"},
      {"[1]", "dev", "JSON object of stages"},
      {R"({"dev": {"app_function": "app.app"}})", "prod", "no stage 'prod' (stages: dev)"},
      {R"({"dev": {}})", "dev", "app_function: is required"},
      {R"({"dev": {"app_function": "app"}})", "dev", "must be \"module.app\""},
      {R"({"dev": {"app_function": "a.b", "memory_size": 64}})", "dev",
       "memory_size: 64 is out of range 128-16777216"},
      {R"({"dev": {"app_function": "a.b", "timeout_seconds": "30"}})", "dev",
       "timeout_seconds: must be a whole number"},
      {R"({"dev": {"app_function": "a.b", "environment_variables": {"X": 1}}})", "dev",
       "environment_variables.X: must be a string"},
      {R"({"dev": {"extends": "prod", "app_function": "a.b"}, "prod": {"extends": "dev"}})", "dev",
       "loops back"},
      {R"({"dev": {"extends": "base", "app_function": "a.b"}})", "dev",
       "extends 'base', which does not exist"},
      {R"({"dev": {"app_function": "a.b", "events": [{"function": "x"}]}})", "dev",
       "events[0].function: must be \"module.function\""},
      {R"({"dev": {"app_function": "a.b", "events": [{"function": "t.x"}]}})", "dev",
       "events[0].expression: is required"},
      {R"({"dev": {"app_function": "a.b", "project_name": "my app"}})", "dev",
       "not a valid function name"},
      {R"({"dev": {"app_function": "a.b", "lambda_handler": "h.h"}})", "dev", "not both"},
      {R"({"dev": {"events": []}})", "dev", "or events for a project of scheduled functions"},
  };
  for (const auto& c : cases) {
    auto s = Parse(c.text, c.stage);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.status().message().find(c.expect), std::string::npos)
        << c.text << " -> " << s.status().message();
  }
}

// Zappa deploys a project of scheduled functions only (a cron bot).
TEST(Settings, EventOnlyProject) {
  auto s = Parse(R"J({"dev": {"project_name": "bot", "keep_warm": false,
      "events": [{"function": "tweet.check_time_and_post", "expression": "rate(1 minute)"}]}})J",
                 "dev", "/p/zappa_settings.json");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->app_function.empty());
  EXPECT_TRUE(s->lambda_handler.empty());
  ASSERT_EQ(s->events.size(), 1u);
  s = Parse(R"J({"dev": {"lambda_handler": "bot.handle",
      "events": [{"function": "tweet.post", "expression": "rate(1 hour)"}]}})J");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->lambda_handler, "bot.handle");
}

// No stage named: the only one, else "which stage?" listing them.
TEST(Settings, OneStageNeedsNoName) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gust-onestage-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "zappa_settings.json") << R"({"prod": {"app_function": "app.app"}})";
  auto s = LoadStage(dir.string(), "");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->stage, "prod");
  std::ofstream(dir / "zappa_settings.json", std::ios::trunc)
      << R"({"dev": {"app_function": "app.app"}, "prod": {"extends": "dev"}})";
  s = LoadStage(dir.string(), "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("which stage?"), std::string::npos);
  EXPECT_NE(s.status().message().find("dev, prod"), std::string::npos) << s.status().message();
  fs::remove_all(dir);
}

TEST(Settings, FindsGustFileBeforeZappaFile) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gust-settings-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto missing = FindSettingsFile(dir.string());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  std::ofstream(dir / "zappa_settings.json") << R"({"dev": {"app_function": "app.app"}})";
  EXPECT_EQ(*FindSettingsFile(dir.string()), (dir / "zappa_settings.json").string());
  std::ofstream(dir / "gust_settings.json") << R"({"dev": {"app_function": "web.app"}})";
  auto s = LoadStage(dir.string(), "dev");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->app_function, "web.app");
  EXPECT_FALSE(s->from_zappa);
  auto stages = ListStages(R"({"b": {}, "a": {}})", "f");
  ASSERT_TRUE(stages.ok());
  EXPECT_EQ(*stages, (std::vector<std::string>{"b", "a"}));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gust::cli

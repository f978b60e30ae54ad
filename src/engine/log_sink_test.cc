#include "engine/log_sink.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace gust::engine {
namespace {

class LogSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gust-logsink-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(LogSinkTest, AppendsStampedLinesAndReadsByOffset) {
  {
    LogSink sink(dir_ + "/logs");
    sink.Append("f", "START RequestId: 1 Version: $LATEST\nhello\nEND RequestId: 1\n", 1000);
    sink.Append("g", "other function", 1500);
    sink.Append("f", "START RequestId: 2", 2000);
    sink.Flush();
  }
  auto all = LogSink::Read(dir_ + "/logs", "f", 0, 0, 1 << 20);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->text,
            "1000\tSTART RequestId: 1 Version: $LATEST\n1000\thello\n1000\tEND RequestId: 1\n"
            "2000\tSTART RequestId: 2\n");
  auto recent = LogSink::Read(dir_ + "/logs", "f", 1500, 0, 1 << 20);
  EXPECT_EQ(recent->text, "2000\tSTART RequestId: 2\n");
  // Reading from the returned offset yields only what came after.
  auto rest = LogSink::Read(dir_ + "/logs", "f", 0, all->next_offset, 1 << 20);
  EXPECT_EQ(rest->text, "");
  EXPECT_EQ(rest->next_offset, all->next_offset);
}

TEST_F(LogSinkTest, MissingLogIsEmpty) {
  auto chunk = LogSink::Read(dir_, "nobody", 0, 0, 1024);
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(chunk->text, "");
  EXPECT_EQ(chunk->next_offset, 0u);
}

TEST_F(LogSinkTest, ManyAppendsFromThreadsAllLand) {
  LogSink sink(dir_ + "/logs");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&sink, t] {
      for (int i = 0; i < 500; ++i) sink.Append("f", "t" + std::to_string(t), 1);
    });
  }
  for (auto& t : threads) t.join();
  sink.Flush();
  auto chunk = LogSink::Read(dir_ + "/logs", "f", 0, 0, 1 << 22);
  EXPECT_EQ(std::count(chunk->text.begin(), chunk->text.end(), '\n'), 2000);
}

}  // namespace
}  // namespace gust::engine

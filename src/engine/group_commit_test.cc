#include "engine/group_commit.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <filesystem>

namespace gust::engine {
namespace {

class TempFile {
 public:
  TempFile() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gust-gc-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) abort();
    dir_ = tmpl;
  }
  ~TempFile() { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_ + "/queue.db"; }

 private:
  std::string dir_;
};

EventWrite Insert(int i) {
  EventWrite w;
  w.event.id = "e" + std::to_string(i);
  w.event.function = "f";
  w.event.payload = "{}";
  w.event.enqueued_ms = w.event.due_ms = 1;
  return w;
}

TEST(GroupCommitter, ManySubmitsShareCommitsAndCallBackOnTheIoContext) {
  TempFile file;
  auto queue = std::move(OpenSqliteEventQueue(file.path())).value();
  boost::asio::io_context io(1);
  auto guard = boost::asio::make_work_guard(io);
  GroupCommitter committer(io, *queue);
  constexpr int kWrites = 200;
  int done = 0;
  std::thread::id io_thread;
  for (int i = 0; i < kWrites; ++i) {
    committer.Submit({Insert(i)}, [&](const Status& s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(std::this_thread::get_id(), io_thread);
      if (++done == kWrites) guard.reset();
    });
  }
  io_thread = std::this_thread::get_id();
  io.run();
  EXPECT_EQ(done, kWrites);
  auto stats = committer.stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kWrites));
  EXPECT_LT(stats.commits, static_cast<uint64_t>(kWrites / 2));  // grouped, not one per write
  EXPECT_EQ(queue->Counts()->queued, kWrites);
}

TEST(GroupCommitter, JobsRunAfterTheWritesSubmittedBeforeThem) {
  TempFile file;
  auto queue = std::move(OpenSqliteEventQueue(file.path())).value();
  boost::asio::io_context io(1);
  auto guard = boost::asio::make_work_guard(io);
  GroupCommitter committer(io, *queue);
  committer.Submit({Insert(1), Insert(2)}, [](const Status&) {});
  size_t leased = 0;
  committer.Run([&](EventQueue& q) {
    leased = q.Lease(10, 100, 1 << 20)->events.size();
    boost::asio::post(io, [&] { guard.reset(); });
  });
  io.run();
  EXPECT_EQ(leased, 2u);
}

}  // namespace
}  // namespace gust::engine

#include "engine/group_commit.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

namespace gust::engine {

GroupCommitter::GroupCommitter(boost::asio::io_context& io, EventQueue& queue)
    : io_(io),
      queue_(queue),
      commits_log_("event queue commit", "each write's own caller decides") {
  thread_ = std::thread([this] { Loop(); });
}

GroupCommitter::~GroupCommitter() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  thread_.join();
}

void GroupCommitter::Submit(std::vector<EventWrite> writes, Done done) {
  {
    MutexLock lock(&mu_);
    for (auto& w : writes) writes_.push_back(std::move(w));
    dones_.push_back(std::move(done));
  }
  cv_.Signal();
}

void GroupCommitter::Run(std::function<void(EventQueue&)> job) {
  {
    MutexLock lock(&mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.Signal();
}

GroupCommitter::Stats GroupCommitter::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

void GroupCommitter::Loop() {
  std::vector<EventWrite> writes;
  std::vector<Done> dones;
  std::vector<std::function<void(EventQueue&)>> jobs;
  for (;;) {
    {
      MutexLock lock(&mu_);
      while (!stopping_ && dones_.empty() && jobs_.empty()) cv_.Wait(&mu_);
      if (stopping_ && dones_.empty() && jobs_.empty()) return;
      writes.swap(writes_);
      dones.swap(dones_);
      jobs.swap(jobs_);
    }
    if (!dones.empty()) {
      std::vector<std::string> fenced;
      Status status = writes.empty() ? Status::Ok() : queue_.Commit(writes, &fenced);
      commits_log_.Note(status);
      // At least once: another node ran (or runs) the event too, and its outcome counts.
      for (const std::string& id : fenced)
        spdlog::warn(
            "async event {}: this node's outcome dropped: the event's lease passed to "
            "another node (or this node's epoch is stale)",
            id);
      {
        MutexLock lock(&mu_);
        ++stats_.commits;
        stats_.writes += writes.size();
      }
      boost::asio::post(io_, [dones = std::move(dones), status]() {
        for (const Done& done : dones) done(status);
      });
      dones = {};
      writes.clear();
    }
    for (auto& job : jobs) job(queue_);
    jobs.clear();
  }
}

}  // namespace gust::engine

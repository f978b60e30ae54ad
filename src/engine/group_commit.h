// GroupCommitter: the one thread that writes the event queue. Writes
// submitted from the engine thread are gathered while the previous commit is
// on its way to disk and committed together in one transaction (one fsync for
// many accepted events); each submitter's callback then runs on the engine's
// io_context with the commit's status. Other queue work that must be ordered
// with the writes (page-ins, redrives, purges) runs on the same thread
// between commits, after every write submitted before it. A write the queue
// reports fenced (a cluster node's outcome for an event whose lease another
// node took over) is logged as dropped; its submitter sees OK.
//
// Thread-safety: Submit and Run may be called from any thread; callbacks run
// on the io_context. The destructor commits what was submitted, then stops
// (callbacks of that last commit are posted but may never run if the
// io_context is stopped).
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "engine/outage_log.h"
#include "store/event_queue.h"

namespace gust::engine {

class GroupCommitter {
 public:
  using Done = std::function<void(const Status&)>;

  GroupCommitter(boost::asio::io_context& io, EventQueue& queue);
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // The writes commit together (and with whatever else is pending).
  void Submit(std::vector<EventWrite> writes, Done done);
  // Runs job on the writer thread after the writes submitted before it.
  void Run(std::function<void(EventQueue&)> job);

  struct Stats {
    uint64_t commits = 0;
    uint64_t writes = 0;
  };
  Stats stats() const;

 private:
  void Loop();

  boost::asio::io_context& io_;
  EventQueue& queue_;
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<EventWrite> writes_ GUARDED_BY(mu_);
  std::vector<Done> dones_ GUARDED_BY(mu_);
  std::vector<std::function<void(EventQueue&)>> jobs_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  Stats stats_ GUARDED_BY(mu_);
  OutageLog commits_log_;  // the writer thread's
  std::thread thread_;
};

}  // namespace gust::engine

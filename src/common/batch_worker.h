// BatchWorker<T>: a background thread that hands queued items to a sink in
// batches — at most max_batch items, at least every flush_interval while items
// wait. The engine's io thread never blocks on disk: logs and invocation
// records are pushed here and written by the worker.
//
// Thread-safety: Push and Flush are safe from any thread. The sink runs on the
// worker thread only. The destructor drains the queue before returning.
#pragma once

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace gust {

template <typename T>
class BatchWorker {
 public:
  using Sink = std::function<void(std::vector<T>&)>;

  BatchWorker(Sink sink, size_t max_batch, std::chrono::milliseconds flush_interval)
      : sink_(std::move(sink)), max_batch_(max_batch), interval_(flush_interval) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~BatchWorker() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    cv_.SignalAll();
    thread_.join();
  }
  BatchWorker(const BatchWorker&) = delete;
  BatchWorker& operator=(const BatchWorker&) = delete;

  void Push(T item) {
    bool wake;
    {
      MutexLock lock(&mu_);
      queue_.push_back(std::move(item));
      wake = queue_.size() >= max_batch_;
    }
    if (wake) cv_.SignalAll();
  }

  // Blocks until everything pushed before the call has been given to the sink.
  void Flush() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    uint64_t target = pushed_generation_ + 1;
    flush_requested_ = true;
    cv_.SignalAll();
    while (written_generation_ < target && !stopping_) done_cv_.Wait(&mu_);
  }

 private:
  void Loop() EXCLUDES(mu_) {
    std::vector<T> batch;
    for (;;) {
      uint64_t generation;
      {
        MutexLock lock(&mu_);
        auto deadline = std::chrono::steady_clock::now() + interval_;
        while (!stopping_ && !flush_requested_ && queue_.size() < max_batch_) {
          if (!cv_.WaitUntil(&mu_, deadline)) break;
        }
        if (queue_.empty() && stopping_) {
          written_generation_ = ++pushed_generation_;
          done_cv_.SignalAll();
          return;
        }
        batch.swap(queue_);
        flush_requested_ = false;
        generation = ++pushed_generation_;
      }
      if (!batch.empty()) sink_(batch);
      batch.clear();
      {
        MutexLock lock(&mu_);
        written_generation_ = generation;
      }
      done_cv_.SignalAll();
    }
  }

  Sink sink_;
  const size_t max_batch_;
  const std::chrono::milliseconds interval_;
  Mutex mu_;
  CondVar cv_;       // to the worker: stopping, a flush, or a full batch
  CondVar done_cv_;  // to Flush(): written_generation_ moved
  std::vector<T> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  bool flush_requested_ GUARDED_BY(mu_) = false;
  uint64_t pushed_generation_ GUARDED_BY(mu_) = 0;
  uint64_t written_generation_ GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace gust

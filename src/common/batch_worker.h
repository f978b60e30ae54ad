// BatchWorker<T>: a background thread that hands queued items to a sink in
// batches — at most max_batch items, at least every flush_interval while items
// wait. The engine's io thread never blocks on disk: logs and invocation
// records are pushed here and written by the worker.
//
// Thread-safety: Push and Flush are safe from any thread. The sink runs on the
// worker thread only. The destructor drains the queue before returning.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

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
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  BatchWorker(const BatchWorker&) = delete;
  BatchWorker& operator=(const BatchWorker&) = delete;

  void Push(T item) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(item));
      wake = queue_.size() >= max_batch_;
    }
    if (wake) cv_.notify_all();
  }

  // Blocks until everything pushed before the call has been given to the sink.
  void Flush() {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t target = pushed_generation_ + 1;
    flush_requested_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return written_generation_ >= target || stopping_; });
  }

 private:
  void Loop() {
    std::vector<T> batch;
    for (;;) {
      uint64_t generation;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, interval_,
                     [&] { return stopping_ || flush_requested_ || queue_.size() >= max_batch_; });
        if (queue_.empty() && stopping_) {
          written_generation_ = ++pushed_generation_;
          done_cv_.notify_all();
          return;
        }
        batch.swap(queue_);
        flush_requested_ = false;
        generation = ++pushed_generation_;
      }
      if (!batch.empty()) sink_(batch);
      batch.clear();
      {
        std::lock_guard<std::mutex> lock(mu_);
        written_generation_ = generation;
      }
      done_cv_.notify_all();
    }
  }

  Sink sink_;
  const size_t max_batch_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::vector<T> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  bool flush_requested_ GUARDED_BY(mu_) = false;
  uint64_t pushed_generation_ GUARDED_BY(mu_) = 0;
  uint64_t written_generation_ GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace gust

// gust::Mutex, MutexLock and CondVar: std::mutex and std::condition_variable
// with clang's capability annotations (common/thread_annotations.h), so that
// -Wthread-safety checks every GUARDED_BY member is touched under its lock.
// As LevelDB's port::Mutex: inline wrappers, nothing over std::mutex in a
// release build.
//
//   Mutex mu_;
//   int n_ GUARDED_BY(mu_);
//   void Add() { MutexLock lock(&mu_); ++n_; }
//   void WaitPositive() {
//     MutexLock lock(&mu_);
//     while (n_ <= 0) cv_.Wait(&mu_);   // a loop, not a predicate lambda:
//   }                                   // the analysis sees n_ read locked
//
// Errors: none (std::mutex's std::system_error on lock is not handled: it
// means a broken invariant, e.g. locking a destroyed mutex).
// Thread-safety: that is what they are for. A Mutex is not recursive.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace gust {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds the lock (where it cannot follow);
  // checks nothing at run time.
  void AssertHeld() ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable waited on with a Mutex held. Wakeups may be spurious:
// wait in a loop on the condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases mu while blocked; holds it again on return.
  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // As Wait, until deadline at the latest. False once the deadline passed.
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex* mu, std::chrono::time_point<Clock, Duration> deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    std::cv_status status = cv_.wait_until(lock, deadline);
    lock.release();
    return status == std::cv_status::no_timeout;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace gust

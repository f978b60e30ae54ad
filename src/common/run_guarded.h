// RunGuarded / PostGuarded: the worker pool's backstop (docs/STYLE.md,
// "Backstops"). Management work runs on a boost::asio::thread_pool; an
// exception escaping a task there is std::terminate, which would end the
// engine and every function on it. gust code does not throw on outside input,
// so an exception reaching this point is a bug: it is logged as one ("BUG:"),
// and everything else carries on. api/run_guarded.h adds the answer to the
// request that hit it; this layer serves work that answers nobody (the map
// functions' sweep).
//
// Thread-safety: stateless; runs fn on the calling thread (RunGuarded) or on
// one of the pool's threads (PostGuarded).
#pragma once

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <exception>
#include <utility>

namespace gust {

// Logs "BUG: an exception escaped a worker-pool task (docs/STYLE.md): <what>".
// noexcept: it runs in a catch handler, which must not throw in turn (spdlog
// catches its own errors).
void LogEscapedException(const char* what) noexcept;

// Runs fn; if an exception escapes it, calls on_escape(what) instead of letting it travel.
template <typename Fn, typename OnEscape>
void RunGuarded(Fn& fn, const OnEscape& on_escape) {
  try {
    fn();
  } catch (const std::exception& e) {
    on_escape(e.what());
  } catch (...) {
    on_escape("an exception that is not a std::exception");
  }
}

// Posts fn to the pool; an exception escaping it is logged as a bug.
template <typename Fn>
void PostGuarded(boost::asio::thread_pool& workers, Fn fn) {
  boost::asio::post(workers,
                    [fn = std::move(fn)]() mutable { RunGuarded(fn, LogEscapedException); });
}

}  // namespace gust

// RunGuarded / PostGuarded: the worker pool's backstop (docs/STYLE.md,
// "Backstops"). Management calls run on a boost::asio::thread_pool; an
// exception escaping a task there is std::terminate, which would end the
// engine and every function on it. gust code does not throw on outside input,
// so an exception reaching this point is a bug: it is logged as one, and the
// request that hit it (if any) gets a 500 ServiceException naming it, while
// everything else carries on.
//
// Thread-safety: stateless; runs fn on the calling thread (RunGuarded) or on
// one of the pool's threads (PostGuarded).
#pragma once

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <exception>
#include <utility>

#include "http/server.h"

namespace gust::api {

// Logs "BUG: ..." and answers `responder` with a 500 (a Responder already
// answered ignores it).
void ReportEscapedException(const char* what, const http::Responder& responder);

template <typename Fn>
void RunGuarded(const http::Responder& responder, Fn& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    ReportEscapedException(e.what(), responder);
  } catch (...) {
    ReportEscapedException("an exception that is not a std::exception", responder);
  }
}

// Posts fn to the pool under RunGuarded. `responder` is the request fn
// answers, or a default Responder for work that answers nobody.
template <typename Fn>
void PostGuarded(boost::asio::thread_pool& workers, http::Responder responder, Fn fn) {
  boost::asio::post(workers, [responder = std::move(responder), fn = std::move(fn)]() mutable {
    RunGuarded(responder, fn);
  });
}

}  // namespace gust::api

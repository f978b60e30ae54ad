// GUST_CHECK: the one way gust crashes on purpose (docs/STYLE.md).
//
// A CHECK states an invariant of gust's own code — something no client,
// function, file or OS answer can make false. When it fails the process is
// in a state nobody reasoned about, so it logs the condition, the message and
// where, and aborts (a core dump or the sanitizer's report follows). Anything
// that came from outside is never CHECKed: it is handled and answered with a
// specific error (common/status.h, common/json_read.h).
//
// Unlike assert(), a CHECK is compiled into release builds: an invariant that
// matters in a test matters in production.
//
// Thread-safety: safe from any thread.
#pragma once

namespace gust {

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const char* message);

}  // namespace gust

#define GUST_CHECK(condition, message)                                \
  do {                                                                \
    if (!(condition)) [[unlikely]] {                                  \
      ::gust::CheckFailed(__FILE__, __LINE__, #condition, (message)); \
    }                                                                 \
  } while (0)

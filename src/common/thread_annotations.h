// Clang thread-safety annotations (checked with -Wthread-safety under clang,
// no-ops under GCC). Use GUARDED_BY on members protected by a mutex.
#pragma once

#if defined(__clang__)
#define GUST_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GUST_THREAD_ANNOTATION(x)
#endif

#define GUARDED_BY(x) GUST_THREAD_ANNOTATION(guarded_by(x))
#define REQUIRES(...) GUST_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) GUST_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

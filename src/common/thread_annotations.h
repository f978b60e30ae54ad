// Clang thread-safety annotations: checked by -Wthread-safety under clang
// (the clang build of `make test` makes a warning an error), no-ops under GCC.
// GUARDED_BY a member its mutex protects, REQUIRES on a helper called with
// the lock held, EXCLUDES on a function that takes it. The capability they
// name is a gust::Mutex (common/mutex.h): libstdc++'s std::mutex carries no
// annotations, so the analysis could not see it being locked.
// Clang's manual: https://clang.llvm.org/docs/ThreadSafetyAnalysis.html
#pragma once

#if defined(__clang__)
#define GUST_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GUST_THREAD_ANNOTATION(x)
#endif

// On data.
#define GUARDED_BY(x) GUST_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) GUST_THREAD_ANNOTATION(pt_guarded_by(x))

// On functions.
#define REQUIRES(...) GUST_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) GUST_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) GUST_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) GUST_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) GUST_THREAD_ANNOTATION(assert_capability(x))
// Only where the analysis cannot follow (it does not see through lambdas run
// elsewhere, or aliasing), with a comment saying why the access is safe.
#define NO_THREAD_SAFETY_ANALYSIS GUST_THREAD_ANNOTATION(no_thread_safety_analysis)

// On classes: a lockable type, and an RAII holder of one.
#define CAPABILITY(x) GUST_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY GUST_THREAD_ANNOTATION(scoped_lockable)

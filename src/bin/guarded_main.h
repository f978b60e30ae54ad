// GuardedMain: the main() of a small tool. What throws out of the tool's Run
// (std::thread, container growth, CLI11 past its parse) means the tool cannot
// run: a message naming the tool and exit 1, not std::terminate.
//
// Thread-safety: call from main() only. Header-only: the tools that use it link
// no gust library.
#pragma once

#include <cstdio>
#include <exception>

namespace gust {

inline int GuardedMain(const char* tool, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: unknown exception\n", tool);
  }
  return 1;
}

}  // namespace gust

// gust-sandbox-init: the zygote process of the sandbox layer. Started by
// ZygoteLauncher with a SOCK_SEQPACKET control socket on fd 3 and its JSON
// configuration (sandbox/zygote_server.h) as argv[1]. All logic lives in
// src/sandbox/zygote_server.cc.
#include <cstdio>

#include "sandbox/zygote_python.h"
#include "sandbox/zygote_server.h"

// GCC says __SANITIZE_ADDRESS__; clang 16 only __has_feature(address_sanitizer).
#if defined(__SANITIZE_ADDRESS__)
#define GUST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GUST_ASAN 1
#endif
#endif

#if defined(GUST_ASAN)
// Sanitizer builds: LeakSanitizer needs /proc, which the zygote's pivoted
// root lacks, and ASan's SEGV handler would turn a sandbox's crash into
// exit(1) where the engine must see the signal.
extern "C" const char* __asan_default_options() { return "detect_leaks=0:handle_segv=0"; }
#endif

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gust-sandbox-init CONFIG_JSON (started by the gust engine)\n");
    return 2;
  }
  auto config = gust::sandbox::ParseZygoteConfig(argv[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "gust-sandbox-init: %s\n", config.status().ToString().c_str());
    return 2;
  }
  return gust::sandbox::RunZygote(*config, &gust::sandbox::InitPython);
}

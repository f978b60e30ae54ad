// Fuzz target: a project's gust_settings.json / zappa_settings.json
// (src/cli/settings.h): the stage list, and each stage resolved (extends
// chains, defaults, every value validated), as `gust deploy STAGE` reads it.
// The file is the user's, so a bad one must be an error naming the key.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cli/settings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const char* file : {"gust_settings.json", "zappa_settings.json"}) {
    auto stages = gust::cli::ListStages(text, file);
    if (!stages.ok()) continue;
    for (const std::string& stage : *stages) {
      (void)gust::cli::ParseStage(text, file, stage, "/tmp/fuzz-project");
    }
    (void)gust::cli::ParseStage(text, file, "missing-stage", "/tmp/fuzz-project");
  }
  return 0;
}

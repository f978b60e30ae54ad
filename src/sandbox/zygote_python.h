// The zygote's Python: bringing the interpreter up (when the zygote is the
// embedded gust-sandbox-init; inside /usr/bin/python3 it already is) and
// loading the runtime with the configured preloads, before any fork.
//
// Thread-safety: the zygote is single-threaded; these run once, holding the GIL.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace gust::sandbox {

// "TypeName: message" of the pending Python exception, which is cleared.
std::string TakePyError();

// Initialises the interpreter as /usr/bin/python3 would be (-E -s); a no-op
// when it is already up.
Status InitPython();

// Imports the runtime, preloads modules (failures are warnings), pre-imports
// the bootstrap so children find it in sys.modules, and freezes the heap so
// the children's GC does not dirty the shared pages.
Status LoadRuntime(const std::vector<std::string>& preload, std::vector<std::string>* warnings);

}  // namespace gust::sandbox

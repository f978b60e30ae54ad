// The zygote's Python: bringing the interpreter up (when the zygote is the
// embedded gust-sandbox-init; inside python3 it already is) and loading the
// runtime with the configured preloads, before any fork.
//
// Everything but InitPython uses only the stable ABI of CPython 3.9
// (Py_LIMITED_API=0x03090000), so the _gust_zygote module built from it loads
// into any CPython >= 3.9: a venv's, pyenv's, conda's.
//
// Thread-safety: the zygote is single-threaded; these run once, holding the GIL.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

// Python.h's, declared here so this header does not need it.
struct _object;
typedef struct _object PyObject;  // NOLINT(modernize-use-using): as Python.h has it

namespace gust::sandbox {

// "TypeName: message" of the pending Python exception, which is cleared.
std::string TakePyError();

// str(object) as UTF-8 ("" if that fails; the error is cleared).
std::string PyText(PyObject* object);

// Runs `code` in a fresh namespace (builtins.exec); Internal with the
// exception's text if it raised.
Status RunPython(const char* code);

// Initialises the interpreter as /usr/bin/python3 would be (-E -s); a no-op
// when it is already up. Full C API (PyConfig): defined in zygote_embed.cc,
// linked into gust-sandbox-init only, and passed to RunZygote by it.
Status InitPython();

// Imports the runtime, preloads modules (failures are warnings), pre-imports
// the bootstrap so children find it in sys.modules, and freezes the heap so
// the children's GC does not dirty the shared pages.
Status LoadRuntime(const std::vector<std::string>& preload, std::vector<std::string>* warnings);

}  // namespace gust::sandbox

// _gust_zygote: the sandbox zygote as a CPython extension module, so that it
// (and every sandbox forked from it) runs in Debian's /usr/bin/python3, built
// with PGO+LTO, rather than in an embedded libpython (~15% slower on pure
// Python code), or in a user's environment's python (env_launcher.h). Built
// with CPython 3.9's stable ABI (Py_LIMITED_API=0x03090000): one .so loads
// into every CPython >= 3.9. ZygoteLauncher starts
//   PYTHON -E -s -c <bootstrap> MODULE_DIR CONFIG_JSON
// with the control socket on fd 3; the bootstrap imports this module from
// MODULE_DIR and calls run(CONFIG_JSON), which serves until the engine closes
// the socket (src/sandbox/zygote_server.h) and returns the exit code.
//
// Not linked against libpython: the interpreter exports its C API to
// extensions. Thread-safety: run() owns the process (it forks) and must be
// called from the main thread of a single-threaded interpreter.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sandbox/zygote_server.h"

namespace {

PyObject* Run(PyObject* /*module*/, PyObject* config_json) {
  // PyUnicode_AsUTF8 is outside the stable ABI (before 3.10).
  PyObject* utf8 = PyUnicode_AsUTF8String(config_json);
  if (utf8 == nullptr) return nullptr;
  const char* text = PyBytes_AsString(utf8);
  auto config = text ? gust::sandbox::ParseZygoteConfig(text)
                     : gust::Result<gust::sandbox::ZygoteConfig>(
                           gust::Status::InvalidArgument("config is not a str"));
  Py_DECREF(utf8);
  if (!config.ok()) {
    PyErr_SetString(PyExc_ValueError, config.status().ToString().c_str());
    return nullptr;
  }
  // The interpreter is up already: no init_python.
  return PyLong_FromLong(gust::sandbox::RunZygote(*config, nullptr));
}

PyMethodDef kMethods[] = {
    {"run", Run, METH_O,
     "run(config_json) -> int: serve as the sandbox zygote on fd 3 until EOF (started by the "
     "gust engine)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT,
    "_gust_zygote",
    "The gust sandbox zygote (started by the gust engine).",
    -1,
    kMethods,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

// The name CPython's import looks for: PyInit_ + the module's name, _gust_zygote.
PyMODINIT_FUNC PyInit__gust_zygote() {  // NOLINT(bugprone-reserved-identifier)
  return PyModule_Create(&kModule);
}

// Built with the stable ABI (Py_LIMITED_API, src/sandbox/CMakeLists.txt), so
// the _gust_zygote module that links it loads into any CPython >= 3.9.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sandbox/zygote_python.h"

namespace gust::sandbox {

std::string PyText(PyObject* object) {
  std::string out;
  PyObject* s = PyObject_Str(object);
  PyObject* utf8 = s ? PyUnicode_AsEncodedString(s, "utf-8", "replace") : nullptr;
  if (utf8 != nullptr) {
    const char* c = PyBytes_AsString(utf8);
    if (c != nullptr) out = c;
  }
  Py_XDECREF(utf8);
  Py_XDECREF(s);
  if (PyErr_Occurred()) PyErr_Clear();
  return out;
}

std::string TakePyError() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  std::string out = "unknown Python error";
  if (type != nullptr) {
    // PyTypeObject is opaque in the stable ABI: the name is an attribute.
    PyObject* name = PyObject_GetAttrString(type, "__name__");
    out = name ? PyText(name) : "?";
    Py_XDECREF(name);
    if (value != nullptr) out += ": " + PyText(value);
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyErr_Clear();
  return out;
}

Status RunPython(const char* code) {
  // PyRun_SimpleString is outside the stable ABI; builtins.exec is not. The
  // code runs in __main__, as PyRun_SimpleString ran it: both zygotes (the
  // embedded one and python3 + this module) show their sandboxes the same
  // __main__ (tests/e2e/test_zygote.py).
  PyObject* builtins = PyImport_ImportModule("builtins");
  // Both borrowed references.
  PyObject* main = PyImport_AddModule("__main__");
  PyObject* globals = main != nullptr ? PyModule_GetDict(main) : nullptr;
  PyObject* rv = nullptr;
  if (builtins != nullptr && globals != nullptr) {
    rv = PyObject_CallMethod(builtins, "exec", "sO", code, globals);
  }
  Py_XDECREF(builtins);
  if (rv == nullptr) return Status::Internal(TakePyError());
  Py_DECREF(rv);
  return Status::Ok();
}

Status LoadRuntime(const std::vector<std::string>& preload, std::vector<std::string>* warnings) {
  if (!RunPython("import sys\nsys.path.insert(0, '/var/runtime')\n").ok()) {
    return Status::Internal("cannot set sys.path");
  }
  PyObject* zygote = PyImport_ImportModule("gust_runtime.zygote");
  if (zygote == nullptr) return Status::Internal("import gust_runtime.zygote: " + TakePyError());
  PyObject* list = PyList_New(0);
  for (const std::string& m : preload) {
    PyObject* s = PyUnicode_FromString(m.c_str());
    PyList_Append(list, s);
    Py_DECREF(s);
  }
  PyObject* rv = PyObject_CallMethod(zygote, "preload", "O", list);
  Py_DECREF(list);
  Py_DECREF(zygote);
  if (rv == nullptr) {
    warnings->push_back("preload: " + TakePyError());
  } else {
    // A runtime may report per-module failures as a list or dict of strings.
    if ((PyList_Check(rv) || PyDict_Check(rv)) && PyObject_Length(rv) > 0) {
      warnings->push_back("preload: " + PyText(rv));
    }
    Py_DECREF(rv);
  }
  PyObject* boot = PyImport_ImportModule("gust_runtime.bootstrap");
  if (boot == nullptr) return Status::Internal("import gust_runtime.bootstrap: " + TakePyError());
  Py_DECREF(boot);
  if (!RunPython("import gc, sys\ngc.freeze()\nsys.stdout.flush()\nsys.stderr.flush()\n").ok()) {
    return Status::Internal("gc.freeze failed");
  }
  return Status::Ok();
}

}  // namespace gust::sandbox

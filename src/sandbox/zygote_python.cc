#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sandbox/zygote_python.h"

namespace gust::sandbox {

std::string TakePyError() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  std::string out = "unknown Python error";
  if (type != nullptr) {
    out = reinterpret_cast<PyTypeObject*>(type)->tp_name;
    if (value != nullptr) {
      PyObject* s = PyObject_Str(value);
      if (s != nullptr) {
        const char* c = PyUnicode_AsUTF8(s);
        if (c != nullptr) out += std::string(": ") + c;
        Py_DECREF(s);
      }
    }
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyErr_Clear();
  return out;
}

Status InitPython() {
  // The zygote as the _gust_zygote extension: /usr/bin/python3 (started with
  // -E -s, as configured below) is already up, and faster than any embedding.
  if (Py_IsInitialized()) return Status::Ok();
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.use_environment = 0;
  config.user_site_directory = 0;
  config.parse_argv = 0;
  // /usr/bin/python3 as the executable makes getpath find /usr/lib/python3.11
  // and site add /usr/lib/python3/dist-packages, as the real interpreter does.
  PyStatus st = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
  if (!PyStatus_Exception(st)) {
    st = PyConfig_SetString(&config, &config.executable, L"/usr/bin/python3");
  }
  if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(st)) {
    return Status::Internal(std::string("Python initialisation failed: ") +
                            (st.err_msg ? st.err_msg : "?"));
  }
  return Status::Ok();
}

Status LoadRuntime(const std::vector<std::string>& preload, std::vector<std::string>* warnings) {
  if (PyRun_SimpleString("import sys\nsys.path.insert(0, '/var/runtime')\n") != 0) {
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
      PyObject* s = PyObject_Str(rv);
      if (s != nullptr) {
        warnings->push_back(std::string("preload: ") + PyUnicode_AsUTF8(s));
        Py_DECREF(s);
      }
    }
    Py_DECREF(rv);
  }
  PyObject* boot = PyImport_ImportModule("gust_runtime.bootstrap");
  if (boot == nullptr) return Status::Internal("import gust_runtime.bootstrap: " + TakePyError());
  Py_DECREF(boot);
  if (PyRun_SimpleString("import gc, sys\ngc.freeze()\nsys.stdout.flush()\nsys.stderr.flush()\n") !=
      0) {
    return Status::Internal("gc.freeze failed");
  }
  return Status::Ok();
}

}  // namespace gust::sandbox

// InitPython (zygote_python.h): the embedding, which needs the full C API
// (PyConfig), so it is linked into gust-sandbox-init only, never into the
// stable-ABI _gust_zygote module.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sandbox/zygote_python.h"

namespace gust::sandbox {

Status InitPython() {
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

}  // namespace gust::sandbox

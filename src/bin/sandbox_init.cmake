# gust-sandbox-init: the sandbox zygote embedding libpython (logic in
# src/sandbox/zygote_server.cc); kept for sanitizer builds and as the fallback.
add_executable(gust-sandbox-init ${CMAKE_CURRENT_LIST_DIR}/gust_sandbox_init.cc)
target_link_libraries(gust-sandbox-init PRIVATE gust_sandbox_zygote gust_sandbox_embed gust_sandbox
                      gust_embed_python)
set_target_properties(gust-sandbox-init PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)

# _gust_zygote.so: the same zygote as an extension module of /usr/bin/python3
# (the default zygote; see src/sandbox/zygote_server.h) and of any other
# CPython >= 3.9 (gust_sandbox_zygote's Py_LIMITED_API: the stable ABI). Not linked against
# libpython (python3 exports the C API to its extensions); only PyInit is
# exported, so the static libraries inside cannot clash with anything loaded later.
if(GUST_ZYGOTE_IN_PYTHON)
  add_library(_gust_zygote MODULE ${CMAKE_CURRENT_LIST_DIR}/gust_zygote_module.cc)
  target_link_libraries(_gust_zygote PRIVATE gust_sandbox_zygote gust_sandbox)
  target_link_options(_gust_zygote PRIVATE -Wl,--exclude-libs,ALL)
  set_target_properties(_gust_zygote PROPERTIES
    PREFIX "" SUFFIX ".so" CXX_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
  # gust finds the module beside itself, as it finds gust-sandbox-init.
  add_dependencies(gust _gust_zygote)
endif()

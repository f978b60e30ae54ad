// The zygote's configuration (zygote_server.h) as JSON, and its command line:
// built by the launcher, parsed by the zygote. Kept out of zygote_server.cc so
// the engine does not link Python.
#include <nlohmann/json.hpp>

#include "sandbox/zygote_server.h"

namespace gust::sandbox {

using nlohmann::json;

Result<ZygoteConfig> ParseZygoteConfig(std::string_view text) {
  try {
    json j = json::parse(text);
    ZygoteConfig c;
    c.runtime_dir = j.at("runtime_dir").get<std::string>();
    c.bundles_root = j.at("bundles_root").get<std::string>();
    c.work_dir = j.at("work_dir").get<std::string>();
    c.channel_dir = j.value("channel_dir", std::string());
    c.client_dir = j.value("client_dir", std::string());
    c.preload = j.value("preload", std::vector<std::string>{});
    c.uid = j.value("uid", 993u);
    c.gid = j.value("gid", 993u);
    c.engine_pid = j.value("engine_pid", 0);
    c.fail_step = j.value("fail_step", std::string());
    c.prefork = j.value("prefork", kDefaultPrefork);
    c.prefork_max = j.value("prefork_max", kDefaultPreforkMax);
    c.rootless = j.value("rootless", false);
    c.outer_uid = j.value("outer_uid", 0u);
    c.outer_gid = j.value("outer_gid", 0u);
    c.ro_binds = j.value("ro_binds", std::vector<std::string>{});
    return c;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("bad zygote config: ") + e.what());
  }
}

std::string SerializeZygoteConfig(const ZygoteConfig& c) {
  json j = {{"runtime_dir", c.runtime_dir},
            {"bundles_root", c.bundles_root},
            {"work_dir", c.work_dir},
            {"channel_dir", c.channel_dir},
            {"client_dir", c.client_dir},
            {"preload", c.preload},
            {"uid", c.uid},
            {"gid", c.gid},
            {"engine_pid", c.engine_pid},
            {"fail_step", c.fail_step},
            {"prefork", c.prefork},
            {"prefork_max", c.prefork_max},
            {"rootless", c.rootless},
            {"outer_uid", c.outer_uid},
            {"outer_gid", c.outer_gid},
            {"ro_binds", c.ro_binds}};
  return j.dump();
}

std::vector<std::string> PythonZygoteCommand(const std::string& python,
                                             const std::string& module_path,
                                             const std::string& config_json) {
  // -E -s: the environment and the user site are ignored, as the embedded
  // zygote's PyConfig had it (use_environment=0, user_site_directory=0). The
  // rest leaves what the embedded zygote showed its sandboxes: no cwd ('')
  // and no module dir on sys.path, sys.argv == [''], sys.orig_argv == [] (no
  // config JSON), only `sys` in __main__ (LoadRuntime adds gc, as before).
  // The version check comes first: the module's stable ABI is 3.9's, and an
  // older interpreter would fail to load it with an obscure symbol error.
  static constexpr const char* kBootstrap =
      "import sys\n"
      "if getattr(sys, 'implementation', None) is None or sys.implementation.name != 'cpython' "
      "or sys.version_info < (3, 9):\n"
      "    raise SystemExit('gust: %s is %s %s; gust runs CPython 3.9 or later (its zygote module "
      "uses the stable ABI of 3.9)' % (sys.executable, getattr(getattr(sys, 'implementation', "
      "None), 'name', 'python'), sys.version.split()[0]))\n"
      "sys.path[0] = sys.argv[1]\n"
      "import _gust_zygote\n"
      "del _gust_zygote\n"
      "sys.path_importer_cache.pop(sys.path.pop(0), None)\n"
      "sys.argv[:] = ['', sys.argv[2]]\n"
      "if hasattr(sys, 'orig_argv'):\n"
      "    sys.orig_argv[:] = []\n"
      "raise SystemExit(sys.modules['_gust_zygote'].run(sys.argv.pop()))\n";
  std::string dir = module_path.substr(0, module_path.rfind('/'));
  return {python, "-E", "-s", "-c", kBootstrap, dir, config_json};
}

}  // namespace gust::sandbox

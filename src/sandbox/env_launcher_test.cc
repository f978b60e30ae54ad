// Sandboxes in other Python environments (EnvLauncher, python_env.h), with
// real zygotes and sandboxes: a venv over pyenv's CPython 3.9 with a package
// of its own, pyenv's 3.12 and 3.13 (the one stable-ABI module loads in each),
// the refusals (3.8, an untrusted owner, an unreadable dir) and the idle
// zygote's stop and restart. Skipped without root or without pyenv's builds.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "sandbox/env_launcher.h"
#include "sandbox/sandbox_test_util.h"

namespace gust::sandbox {
namespace {

namespace fs = std::filesystem;
using testing::Harness;
using testing::TestEnv;

const std::string kParent = "gust-envtest-" + std::to_string(::getpid());
const std::string kPyenv = "/root/.pyenv/versions/";

std::string Pyenv(const std::string& version) { return kPyenv + version + "/bin/python3"; }

// What a sandbox reports about its Python.
const char kWhoAmI[] =
    "import sys\n"
    "result.update(executable=sys.executable, prefix=sys.prefix, base=sys.base_prefix,\n"
    "              version='%d.%d' % sys.version_info[:2], preloaded='mypkg' in sys.modules)\n"
    "try:\n"
    "    import mypkg, _ctypes\n"
    "    result.update(mypkg=mypkg.VALUE, mypkg_file=mypkg.__file__, ctypes=_ctypes.__file__)\n"
    "except ImportError as e:\n"
    "    result['import_error'] = str(e)\n";

// A venv made as a user would, outside /tmp (each sandbox has its own /tmp),
// with a package of its own and Debian's cloudpickle copied in (no PyPI here).
struct Venv {
  explicit Venv(const std::string& base_python) {
    char tmpl[] = "/var/tmp/gust-envtest-XXXXXX";
    dir = ::mkdtemp(tmpl);
    ::chmod(dir.c_str(), 0755);
    std::string cmd = base_python + " -m venv --without-pip " + dir + "/venv";
    ok = std::system(cmd.c_str()) == 0;
    python = dir + "/venv/bin/python";
    site = dir + "/venv/lib/python3.9/site-packages";
    fs::create_directories(site + "/mypkg");
    std::ofstream(site + "/mypkg/__init__.py") << "VALUE = 42\n";
    std::error_code ec;
    fs::copy("/usr/lib/python3/dist-packages/cloudpickle", site + "/cloudpickle",
             fs::copy_options::recursive, ec);
  }
  ~Venv() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string dir, python, site;
  bool ok = false;
};

class EnvLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "sandbox tests need root (namespaces, cgroups)";
    if (std::string(GUST_ZYGOTE_MODULE_PATH).empty()) {
      GTEST_SKIP() << "no _gust_zygote.so in this build (sanitizers): environments need it";
    }
    if (::access(Pyenv("3.9.18").c_str(), X_OK) != 0) {
      GTEST_SKIP() << "pyenv's CPython 3.9.18 is not installed at " << kPyenv;
    }
  }
  std::unique_ptr<Harness> MakeHarness(const std::string& suffix, int keep_alive_ms = 600000,
                                       std::vector<uint32_t> trusted = {},
                                       std::map<std::string, std::vector<std::string>> preload = {},
                                       Isolation isolation = Isolation::kAuto) {
    LauncherOptions o = env_.Options(kParent + suffix);
    o.isolation = isolation;
    o.python_env_preload = std::move(preload);
    o.python_env_keep_alive_ms = keep_alive_ms;
    o.trusted_python_owners = std::move(trusted);
    auto h = std::make_unique<Harness>(o);
    h->bundle_dir = env_.bundle_dir;
    Status s = h->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return h;
  }
  testing::ProbeOutcome Run(Harness& h, const std::string& python) {
    SandboxSpec spec = h.Spec("e" + std::to_string(counter_++));
    spec.python = python;
    return h.RunProbe(kWhoAmI, spec, 60000);
  }
  EnvLauncher& Launcher(Harness& h) { return *static_cast<EnvLauncher*>(h.launcher.get()); }

  TestEnv env_;
  int counter_ = 0;
};

TEST_F(EnvLauncherTest, VenvOverPyenv39RunsItsOwnPackagesBesideTheDefault) {
  Venv venv(Pyenv("3.9.18"));
  ASSERT_TRUE(venv.ok);
  auto h = MakeHarness("-venv");
  auto out = Run(*h, venv.python);
  ASSERT_TRUE(out.spawned) << out.spawn_error;
  EXPECT_EQ(out.result.value("executable", ""), venv.python) << out.raw << out.log;
  EXPECT_EQ(out.result.value("prefix", ""), venv.dir + "/venv") << out.raw;
  EXPECT_EQ(out.result.value("base", ""), kPyenv + "3.9.18") << out.raw;
  EXPECT_EQ(out.result.value("version", ""), "3.9") << out.raw;
  EXPECT_EQ(out.result.value("mypkg", 0), 42) << out.raw;
  // A compiled extension of the base prefix, at its own absolute path.
  EXPECT_EQ(out.result.value("ctypes", "").rfind(kPyenv + "3.9.18/lib/python3.9/lib-dynload/", 0),
            0u)
      << out.raw;
  // The second spawn goes to the same zygote.
  int zygote = Launcher(*h).ZygotePid(venv.python);
  EXPECT_GT(zygote, 0);
  EXPECT_EQ(Run(*h, venv.python).result.value("mypkg", 0), 42);
  EXPECT_EQ(Launcher(*h).ZygotePid(venv.python), zygote);
  // Kill, LiveCount, PeakMemoryBytes and the exit reach the environment's launcher.
  SandboxSpec ready = h->Spec("e-ready");
  ready.python = venv.python;
  ready.env["MODE"] = "ready";
  auto handle = h->SpawnSync(ready, 30000);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  char frame[64];
  ASSERT_GT(::read(handle->control_fd, frame, sizeof(frame)), 8);  // READY: it runs
  EXPECT_EQ(h->launcher->LiveCount(), 1);
  EXPECT_GT(h->launcher->PeakMemoryBytes("e-ready"), 0u);
  h->launcher->Kill("e-ready");
  ASSERT_TRUE(h->WaitExit("e-ready"));
  EXPECT_EQ(h->exits["e-ready"].signal, SIGKILL);
  EXPECT_EQ(h->launcher->LiveCount(), 0);
  ::close(handle->control_fd);
  ::close(handle->log_fd);
  // The default path is unchanged: Debian's python3, which has no mypkg.
  auto def = Run(*h, "");
  ASSERT_TRUE(def.spawned) << def.spawn_error;
  EXPECT_EQ(def.result.value("executable", ""), "/usr/bin/python3") << def.raw;
  EXPECT_NE(def.result.value("import_error", "").find("mypkg"), std::string::npos) << def.raw;
  EXPECT_NE(Launcher(*h).ZygotePid(""), zygote);
}

// One _gust_zygote.so (3.9's stable ABI) loads and serves in later CPythons.
TEST_F(EnvLauncherTest, TheStableAbiModuleServesPyenv312And313) {
  auto h = MakeHarness("-abi");
  for (std::string v : {"3.12.1", "3.13.0"}) {
    if (::access(Pyenv(v).c_str(), X_OK) != 0) continue;
    auto out = Run(*h, Pyenv(v));
    ASSERT_TRUE(out.spawned) << v << ": " << out.spawn_error;
    EXPECT_EQ(out.result.value("version", ""), v.substr(0, v.rfind('.'))) << out.raw << out.log;
    EXPECT_EQ(out.result.value("executable", ""), Pyenv(v)) << out.raw;
  }
}

// Rootless: the prefixes are bound inside the zygote's user namespace too.
TEST_F(EnvLauncherTest, RootlessVenvRunsItsOwnPackages) {
  Venv venv(Pyenv("3.9.18"));
  ASSERT_TRUE(venv.ok);
  auto h = MakeHarness("-rootless", 600000, {}, {}, Isolation::kRootless);
  auto out = Run(*h, venv.python);
  ASSERT_TRUE(out.spawned) << out.spawn_error;
  EXPECT_EQ(out.result.value("executable", ""), venv.python) << out.raw << out.log;
  EXPECT_EQ(out.result.value("mypkg", 0), 42) << out.raw;
}

TEST_F(EnvLauncherTest, RefusesPython38NamingTheRange) {
  if (::access(Pyenv("3.8.18").c_str(), X_OK) != 0) GTEST_SKIP() << "no pyenv 3.8.18";
  auto h = MakeHarness("-old");
  auto out = Run(*h, Pyenv("3.8.18"));
  EXPECT_FALSE(out.spawned);
  EXPECT_NE(out.spawn_error.find(Pyenv("3.8.18") + " is cpython 3.8.18"), std::string::npos)
      << out.spawn_error;
  EXPECT_NE(out.spawn_error.find("CPython 3.9 or later"), std::string::npos) << out.spawn_error;
  EXPECT_TRUE(Launcher(*h).Environments().empty());
}

TEST_F(EnvLauncherTest, RefusesAMissingRelativeOrTmpInterpreter) {
  auto h = MakeHarness("-bad");
  EXPECT_NE(Run(*h, "/nonexistent/bin/python")
                .spawn_error.find(
                    "NotFound: python environment /nonexistent/bin/python: no interpreter there"),
            std::string::npos);
  EXPECT_NE(Run(*h, "venv/bin/python").spawn_error.find("must be given as an absolute path"),
            std::string::npos);
  // Each sandbox has its own /tmp, which would hide an environment there.
  char tmpl[] = "/tmp/gust-envtest-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ::chmod(dir.c_str(), 0755);
  ASSERT_EQ(std::system((Pyenv("3.9.18") + " -m venv --without-pip " + dir + "/venv").c_str()), 0);
  std::string error = Run(*h, dir + "/venv/bin/python").spawn_error;
  EXPECT_NE(error.find("its prefix " + dir + "/venv is under /tmp"), std::string::npos) << error;
  std::error_code ec;
  fs::remove_all(dir, ec);
  EXPECT_TRUE(Launcher(*h).Environments().empty());
}

TEST_F(EnvLauncherTest, RefusesAnUntrustedOwnerUnlessTrusted) {
  Venv venv(Pyenv("3.9.18"));
  ASSERT_TRUE(venv.ok);
  std::string cmd = "chown -R 4242:4242 " + venv.dir + "/venv";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  {
    auto h = MakeHarness("-owner");
    auto out = Run(*h, venv.python);
    EXPECT_FALSE(out.spawned);
    EXPECT_NE(out.spawn_error.find("owner uid 4242"), std::string::npos) << out.spawn_error;
    EXPECT_NE(out.spawn_error.find("gust up --trusted-python-owner 4242"), std::string::npos)
        << out.spawn_error;
  }
  auto trusting = MakeHarness("-trust", 600000, {4242});
  auto out = Run(*trusting, venv.python);
  ASSERT_TRUE(out.spawned) << out.spawn_error;
  EXPECT_EQ(out.result.value("mypkg", 0), 42) << out.raw;
}

TEST_F(EnvLauncherTest, RefusesADirTheSandboxUserCannotRead) {
  Venv venv(Pyenv("3.9.18"));
  ASSERT_TRUE(venv.ok);
  ::chmod(venv.site.c_str(), 0700);
  auto h = MakeHarness("-unreadable");
  auto out = Run(*h, venv.python);
  EXPECT_FALSE(out.spawned);
  EXPECT_NE(out.spawn_error.find("cannot read " + venv.site + " (owner uid 0, mode 0700)"),
            std::string::npos)
      << out.spawn_error;
}

TEST_F(EnvLauncherTest, AnIdleEnvironmentsZygoteStopsAndComesBack) {
  Venv venv(Pyenv("3.9.18"));
  ASSERT_TRUE(venv.ok);
  // Its zygote preloads what the environment's map says (the default's don't).
  auto h = MakeHarness("-idle", /*keep_alive_ms=*/300, {}, {{venv.python, {"mypkg"}}});
  auto out = Run(*h, venv.python);
  ASSERT_EQ(out.result.value("mypkg", 0), 42) << out.raw << out.spawn_error;
  EXPECT_TRUE(out.result.value("preloaded", false)) << out.raw;
  EXPECT_FALSE(Run(*h, "").result.value("preloaded", true));
  int first = Launcher(*h).ZygotePid(venv.python);
  ASSERT_GT(first, 0);
  h->io.run_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(Launcher(*h).Environments().empty());
  EXPECT_NE(::kill(first, 0), 0) << "the idle zygote still runs";
  EXPECT_EQ(Run(*h, venv.python).result.value("mypkg", 0), 42);
  EXPECT_GT(Launcher(*h).ZygotePid(venv.python), 0);
}

// What runs inside a sandbox imports in every CPython gust supports (no
// 3.10+ syntax or API at import time).
TEST(RuntimeCompatibilityTest, GustRuntimeImportsInPyenv39To313) {
  int tried = 0;
  for (const char* v : {"3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"}) {
    if (::access(Pyenv(v).c_str(), X_OK) != 0) continue;
    ++tried;
    std::string cmd =
        Pyenv(v) +
        " -E -s -c \"import sys, pkgutil, importlib; sys.path.insert(0, '" GUST_RUNTIME_SOURCE_DIR
        "'); import gust_runtime; [importlib.import_module('gust_runtime.' + m.name) "
        "for m in pkgutil.iter_modules(gust_runtime.__path__) "
        "if m.name not in ('stage',)]\"";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << v;
  }
  if (tried == 0) GTEST_SKIP() << "no pyenv CPython at " << kPyenv;
}

}  // namespace
}  // namespace gust::sandbox

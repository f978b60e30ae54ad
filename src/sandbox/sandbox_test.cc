// End-to-end tests of ZygoteLauncher + the zygote (python3 running _gust_zygote.so when
// built, else gust-sandbox-init) with a fake runtime
// (sandbox_test_util.h). They need root, cgroups and namespaces; they skip
// (with a message) when not root.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "sandbox/env_launcher.h"
#include "sandbox/os_seam.h"
#include "sandbox/sandbox_test_util.h"

namespace gust::sandbox {
namespace {

using testing::Harness;
using testing::TestEnv;

// Per test process: ctest runs test cases as concurrent processes.
const std::string kParent = "gust-test-" + std::to_string(::getpid());

std::set<std::string> CgroupChildren() {
  std::set<std::string> out;
  for (const char* base : {"/sys/fs/cgroup/memory/", "/sys/fs/cgroup/pids/", "/sys/fs/cgroup/cpu/",
                           "/sys/fs/cgroup/"}) {
    std::string dir = std::string(base) + kParent;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') out.insert(dir + "/" + e->d_name);
    }
    ::closedir(d);
  }
  return out;
}

// pids whose parent is ppid, or (ppid == 0) sandbox processes (uid 993) in
// this test's cgroups.
std::vector<int> Processes(int ppid) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f("/proc/" + std::string(e->d_name) + "/status");
    std::string line;
    int parent = -1, uid = -1;
    while (std::getline(f, line)) {
      if (line.rfind("PPid:", 0) == 0) parent = std::atoi(line.c_str() + 5);
      if (line.rfind("Uid:", 0) == 0) uid = std::atoi(line.c_str() + 4);
    }
    if (ppid == 0 && uid == 993) {
      // Only sandboxes of this test binary: others may run on the machine.
      std::ifstream cg("/proc/" + std::string(e->d_name) + "/cgroup");
      std::stringstream ss;
      ss << cg.rdbuf();
      if (ss.str().find(std::string("/") + kParent + "/") == std::string::npos) continue;
    }
    if ((ppid != 0 && parent == ppid) || (ppid == 0 && uid == 993)) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

// Processes(0) once the kernel has finished tearing the sandbox down (an
// orphan reparented to a foreign reaper can linger for a moment).
bool NoSandboxProcessesWithin(int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    if (Processes(0).empty()) return true;
    ::usleep(10000);
  }
  return Processes(0).empty();
}

// The init of the sandbox whose runtime is pid: the process that is pid 1
// of the runtime's pid namespace (a sibling: both are the zygote's children).
int InitOf(int runtime) {
  auto field = [](int pid, const char* key) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind(key, 0) == 0) return line.substr(std::strlen(key));
    }
    return std::string();
  };
  auto ns = [](int pid) {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/pid", ec).string();
  };
  std::string want = ns(runtime);
  int zygote = std::atoi(field(runtime, "PPid:").c_str());
  for (int pid : Processes(zygote)) {
    std::string nspid = field(pid, "NSpid:");
    if (pid != runtime && ns(pid) == want && nspid.size() >= 2 &&
        nspid.substr(nspid.size() - 2) == "\t1") {
      return pid;
    }
  }
  return -1;
}

std::string Mountinfo() {
  std::ifstream f("/proc/self/mountinfo");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::IsRoot()) return;
    env_ = new TestEnv();
    harness_ = new Harness(env_->Options(kParent));
    harness_->bundle_dir = env_->bundle_dir;
    Status s = harness_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() {
    delete harness_;
    delete env_;
    harness_ = nullptr;
    env_ = nullptr;
  }
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "sandbox tests need root (namespaces, cgroups)";
  }
  std::string NextId() { return "t" + std::to_string(counter_++); }
  testing::ProbeOutcome Probe(const std::string& code) {
    return harness_->RunProbe(code, harness_->Spec(NextId()));
  }

  static TestEnv* env_;
  static Harness* harness_;
  static int counter_;
};
TestEnv* SandboxTest::env_ = nullptr;
Harness* SandboxTest::harness_ = nullptr;
int SandboxTest::counter_ = 0;

TEST_F(SandboxTest, IdentityAndPrivileges) {
  auto o = Probe(R"(
import os, socket
result.update(pid=os.getpid(), uid=os.getuid(), gid=os.getgid(), euid=os.geteuid(),
              groups=os.getgroups(), host=socket.gethostname(), cwd=os.getcwd())
for line in open('/proc/self/status'):
    k, _, v = line.partition(':')
    if k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'):
        result[k] = v.strip()
result['procs'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
)");
  ASSERT_TRUE(o.spawned) << o.spawn_error;
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  // pid 1 is the sandbox's init (namespace_init.h), not the runtime.
  EXPECT_EQ(o.result["pid"], 2);
  EXPECT_EQ(o.result["uid"], 993);
  EXPECT_EQ(o.result["euid"], 993);
  EXPECT_EQ(o.result["gid"], 993);
  EXPECT_TRUE(o.result["groups"].empty());
  EXPECT_EQ(o.result["host"], "sandbox");
  EXPECT_EQ(o.result["cwd"], "/var/task");
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(o.result[cap], "0000000000000000") << cap;
  }
  EXPECT_EQ(o.result["NoNewPrivs"], "1");
  EXPECT_EQ(o.result["Seccomp"], "2");
  EXPECT_EQ(o.result["procs"], nlohmann::json::array({1, 2}));
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit.exit_code, 0);
}

TEST_F(SandboxTest, FilesystemView) {
  SandboxSpec spec = harness_->Spec(NextId());
  spec.tmp_mb = 4;
  spec.env["STATE"] = env_->dir;
  auto o = harness_->RunProbe(R"(
import os, errno
st = cfg['env']['STATE']
result['root'] = os.path.exists('/root')
result['home'] = os.path.exists('/home')
result['state'] = os.path.exists(st) or os.path.exists(st + '/secret.txt')
result['bundles'] = os.listdir('/.bundles')
result['task'] = open('/var/task/app.py').read()
result['runtime'] = os.path.exists('/var/runtime/gust_runtime/bootstrap.py')
def try_write(path):
    try:
        open(path, 'w').write('x')
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
result['w_task'] = try_write('/var/task/new.py')
result['w_usr'] = try_write('/usr/new')
result['w_root'] = try_write('/new')
result['w_tmp'] = try_write('/tmp/new')
try:
    with open('/tmp/big', 'wb') as f:
        for _ in range(16):
            f.write(b'x' * (1 << 20))
    result['fill'] = 'ok'
except OSError as e:
    result['fill'] = errno.errorcode[e.errno]
result['devnull'] = open('/dev/null', 'w').write('x')
result['urandom'] = len(open('/dev/urandom', 'rb').read(8))
result['dev'] = sorted(os.listdir('/dev'))
)",
                              spec);
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  EXPECT_EQ(o.result["root"], false);
  EXPECT_EQ(o.result["home"], false);
  EXPECT_EQ(o.result["state"], false);
  EXPECT_TRUE(o.result["bundles"].empty());
  EXPECT_NE(o.result["task"].get<std::string>().find("def handler"), std::string::npos);
  EXPECT_EQ(o.result["runtime"], true);
  EXPECT_EQ(o.result["w_task"], "EROFS");
  EXPECT_EQ(o.result["w_usr"], "EROFS");
  EXPECT_EQ(o.result["w_root"], "EROFS");
  EXPECT_EQ(o.result["w_tmp"], "ok");
  EXPECT_EQ(o.result["fill"], "ENOSPC");
  EXPECT_EQ(o.result["urandom"], 8);
  EXPECT_EQ(o.result["dev"], nlohmann::json::parse(R"(["fd","full","null","random","shm",
            "stderr","stdin","stdout","urandom","zero"])"));
}

TEST_F(SandboxTest, DeniedSyscalls) {
  auto o = Probe(R"(
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def err(rc):
    return errno.errorcode.get(ctypes.get_errno(), '?') if rc == -1 else 'ok'
result['mount'] = err(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))
result['umount'] = err(libc.umount2(b'/tmp', 2))
result['unshare'] = err(libc.unshare(0x00020000))
result['ptrace'] = err(libc.ptrace(0, 0, None, None))
fd = os.open('/proc/self/ns/uts', os.O_RDONLY)
result['setns'] = err(libc.setns(fd, 0))
result['chroot'] = err(libc.chroot(b'/tmp'))
result['bpf'] = err(libc.syscall(321, 0, None, 0))
result['clone_newuser'] = err(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
result['clone3'] = err(libc.syscall(435, None, 0))
pid = os.fork()
if pid == 0:
    os._exit(3)
result['fork'] = os.waitpid(pid, 0)[1] >> 8
)");
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  for (const char* k :
       {"mount", "umount", "unshare", "ptrace", "setns", "chroot", "bpf", "clone_newuser"}) {
    EXPECT_EQ(o.result[k], "EPERM") << k;
  }
  EXPECT_EQ(o.result["clone3"], "ENOSYS");
  EXPECT_EQ(o.result["fork"], 3);
}

TEST_F(SandboxTest, NetworkNamespace) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string probe = R"(
import socket, errno
result['ifaces'] = [n for _, n in socket.if_nameindex()]
s = socket.socket()
s.settimeout(2)
try:
    s.connect(('127.0.0.1', int(cfg['env']['PORT'])))
    result['connect'] = 'ok'
except OSError as e:
    result['connect'] = errno.errorcode.get(e.errno, str(e))
)";
  SandboxSpec spec = harness_->Spec(NextId());
  spec.env["PORT"] = std::to_string(ntohs(addr.sin_port));
  auto o = harness_->RunProbe(probe, spec);
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  EXPECT_EQ(o.result["ifaces"], nlohmann::json::array({"lo"}));
  EXPECT_EQ(o.result["connect"], "ECONNREFUSED");

  // With network: the host's namespace (its interfaces), but the host's own
  // services stay closed (loopback_guard.h): the listener is not reached.
  spec.id = NextId();
  spec.network = true;
  o = harness_->RunProbe(probe, spec);
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  EXPECT_GT(o.result["ifaces"].size(), 1u) << o.result.dump();
  EXPECT_EQ(o.result["connect"], "EHOSTUNREACH");
  EXPECT_NE(harness_->launcher->IsolationSummary().find("host loopback closed"), std::string::npos);
  ::close(listener);
}

TEST_F(SandboxTest, Rlimits) {
  auto o = Probe(R"(
import resource
result['nofile'] = resource.getrlimit(resource.RLIMIT_NOFILE)
result['core'] = resource.getrlimit(resource.RLIMIT_CORE)
)");
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  EXPECT_EQ(o.result["nofile"], nlohmann::json::array({1024, 1024}));
  EXPECT_EQ(o.result["core"], nlohmann::json::array({0, 0}));
}

TEST_F(SandboxTest, OomKillIsReported) {
  SandboxSpec spec = harness_->Spec(NextId());
  spec.memory_mb = 48;
  auto o = harness_->RunProbe(R"(
chunks = []
for _ in range(400):
    chunks.append(bytearray(1 << 20))
result['survived'] = True
)",
                              spec);
  ASSERT_TRUE(o.exited);
  EXPECT_TRUE(o.result.is_null()) << o.raw;
  EXPECT_EQ(o.exit.signal, SIGKILL);
  EXPECT_TRUE(o.exit.oom_killed);
  EXPECT_GE(o.exit.peak_memory_bytes, 40ull << 20);
  EXPECT_LE(o.exit.peak_memory_bytes, 49ull << 20);
}

TEST_F(SandboxTest, ForkBombIsContainedAndKilled) {
  SandboxSpec spec = harness_->Spec(NextId());
  spec.pids_max = 32;
  spec.env["PROBE"] = R"(
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
        n += 1
except OSError as e:
    result['error'] = e.errno
result['forked'] = n
import json
os.write(3, json.dumps(result).encode())
time.sleep(1000)
)";
  auto h = harness_->SpawnSync(spec);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  std::string raw;
  char buf[4096];
  while (raw.find('}') == std::string::npos) {
    ssize_t n = ::read(h->control_fd, buf, sizeof(buf));
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  auto j = nlohmann::json::parse(raw, nullptr, false);
  ASSERT_TRUE(j.is_object()) << raw;
  EXPECT_EQ(j["error"], EAGAIN);
  EXPECT_LT(j["forked"].get<int>(), 32);
  EXPECT_EQ(Processes(0).size(), static_cast<size_t>(j["forked"].get<int>()) + 1);
  harness_->launcher->Kill(spec.id);
  ASSERT_TRUE(harness_->WaitExit(spec.id));
  EXPECT_EQ(harness_->exits[spec.id].signal, SIGKILL);
  EXPECT_TRUE(Processes(0).empty());
  EXPECT_TRUE(CgroupChildren().empty());
  ::close(h->control_fd);
  ::close(h->log_fd);
}

TEST_F(SandboxTest, ExitCodeAndSignal) {
  auto o = Probe("result['exit'] = 7\n");
  ASSERT_TRUE(o.exited);
  EXPECT_EQ(o.exit.exit_code, 7);
  EXPECT_EQ(o.exit.signal, 0);
  o = Probe("import ctypes\nctypes.string_at(0)\n");
  ASSERT_TRUE(o.exited);
  EXPECT_EQ(o.exit.signal, SIGSEGV);
  EXPECT_FALSE(o.exit.oom_killed);
  // Signals the runtime sends itself: as pid 1 it ignored them (no handler),
  // and abort() ended in a deliberate fault, i.e. SIGSEGV.
  o = Probe("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\nresult['alive'] = 1\n");
  ASSERT_TRUE(o.exited);
  EXPECT_EQ(o.exit.signal, SIGSEGV) << o.raw;
  o = Probe("import os\nos.abort()\n");
  ASSERT_TRUE(o.exited);
  EXPECT_EQ(o.exit.signal, SIGABRT);
  o = Probe("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nresult['alive'] = 1\n");
  ASSERT_TRUE(o.exited);
  EXPECT_EQ(o.exit.signal, SIGTERM) << o.raw;
}

// The init (pid 1) reaps what the runtime orphans: a grandchild whose parent
// exited is gone from /proc once it exits, not left a zombie.
TEST_F(SandboxTest, InitReapsOrphans) {
  auto o = Probe(R"(
import os, time
r, w = os.pipe()
child = os.fork()
if child == 0:
    grandchild = os.fork()
    if grandchild == 0:
        time.sleep(0.2)
        os._exit(0)
    os.write(w, str(grandchild).encode())
    os._exit(0)
os.waitpid(child, 0)
orphan = int(os.read(r, 16))
result['ppid'] = int(open('/proc/%d/stat' % orphan).read().rsplit(')', 1)[1].split()[1])
state = 'alive'
for _ in range(300):
    try:
        state = open('/proc/%d/stat' % orphan).read().rsplit(')', 1)[1].split()[0]
    except FileNotFoundError:
        state = 'reaped'
        break
    if state == 'Z':
        time.sleep(0.5)  # give a reaper time: still a zombie then is a leak
        try:
            open('/proc/%d/stat' % orphan).read()
        except FileNotFoundError:
            state = 'reaped'
        break
    time.sleep(0.01)
result['orphan'] = state
result['my_ppid'] = os.getppid()
)");
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  EXPECT_EQ(o.result["ppid"], 1);  // reparented to the init
  EXPECT_EQ(o.result["orphan"], "reaped");
  // The runtime's parent, the zygote, is outside its pid namespace.
  EXPECT_EQ(o.result["my_ppid"], 0);
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit.exit_code, 0);
}

// A SIGTERM sent to the sandbox's init from outside reaches the runtime; a
// SIGKILL of the init ends the whole sandbox.
TEST_F(SandboxTest, InitForwardsTermination) {
  SandboxSpec spec = harness_->Spec(NextId());
  spec.env["PROBE"] = R"(
import os, signal, time
got = []
signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
os.write(3, b'{"armed": 1}')
for _ in range(500):
    if got:
        break
    time.sleep(0.01)
result['got'] = got
)";
  auto h = harness_->SpawnSync(spec);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  char buf[64];
  ASSERT_GT(::read(h->control_fd, buf, sizeof(buf)), 0);  // {"armed": 1}
  int init = InitOf(h->pid);
  ASSERT_GT(init, 0);
  std::ifstream comm("/proc/" + std::to_string(init) + "/comm");
  std::string name;
  std::getline(comm, name);
  EXPECT_EQ(name, "gust-init");
  ASSERT_EQ(::kill(init, SIGTERM), 0);
  std::string out = testing::ReadAll(h->control_fd, 10000);
  EXPECT_NE(out.find("\"got\": [15]"), std::string::npos) << out;
  ASSERT_TRUE(harness_->WaitExit(spec.id));
  EXPECT_EQ(harness_->exits[spec.id].exit_code, 0);
  ::close(h->control_fd);
  ::close(h->log_fd);

  spec = harness_->Spec(NextId());
  spec.env["MODE"] = "ready";
  h = harness_->SpawnSync(spec);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_GT(::read(h->control_fd, buf, sizeof(buf)), 8);
  init = InitOf(h->pid);
  ASSERT_GT(init, 0);
  ASSERT_EQ(::kill(init, SIGKILL), 0);
  ASSERT_TRUE(harness_->WaitExit(spec.id));
  EXPECT_EQ(harness_->exits[spec.id].signal, SIGKILL);
  EXPECT_TRUE(Processes(0).empty());
  ::close(h->control_fd);
  ::close(h->log_fd);
}

TEST_F(SandboxTest, KillAReadySandbox) {
  SandboxSpec spec = harness_->Spec(NextId());
  spec.env["MODE"] = "ready";
  auto h = harness_->SpawnSync(spec);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  char frame[64];
  ASSERT_GT(::read(h->control_fd, frame, sizeof(frame)), 8);
  EXPECT_EQ(frame[4], 10);  // READY
  EXPECT_EQ(harness_->launcher->LiveCount(), 1);
  EXPECT_GT(harness_->launcher->PeakMemoryBytes(spec.id), 0u);
  harness_->launcher->Kill(spec.id);
  ASSERT_TRUE(harness_->WaitExit(spec.id));
  EXPECT_EQ(harness_->exits[spec.id].signal, SIGKILL);
  EXPECT_EQ(harness_->launcher->LiveCount(), 0);
  ::close(h->control_fd);
  ::close(h->log_fd);
}

TEST_F(SandboxTest, BadSpecsFailThroughTheCallback) {
  SandboxSpec spec = harness_->Spec("Bad_Id");
  EXPECT_EQ(harness_->SpawnSync(spec).status().code(), Code::kInvalidArgument);
  spec = harness_->Spec(NextId());
  spec.bundle_dir = "/etc";
  EXPECT_EQ(harness_->SpawnSync(spec).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(CgroupChildren().empty());
}

TEST_F(SandboxTest, OsFaultsLeaveNothingBehind) {
  {
    ScopedOsFault<int (*)(int*, int)> fault(&OsOps::pipe2, [](int*, int) {
      errno = EMFILE;
      return -1;
    });
    auto r = harness_->SpawnSync(harness_->Spec(NextId()));
    EXPECT_EQ(r.status().code(), Code::kIoError);
    EXPECT_NE(r.status().message().find("pipe2"), std::string::npos);
  }
  {
    ScopedOsFault<int (*)(const char*, mode_t)> fault(&OsOps::mkdir, [](const char*, mode_t) {
      errno = ENOSPC;
      return -1;
    });
    auto r = harness_->SpawnSync(harness_->Spec(NextId()));
    EXPECT_EQ(r.status().code(), Code::kIoError);
  }
  EXPECT_TRUE(CgroupChildren().empty());
  EXPECT_EQ(harness_->launcher->LiveCount(), 0);
}

TEST_F(SandboxTest, SpawnKillCyclesLeakNothing) {
  std::string mounts_before = Mountinfo();
  int zygote = static_cast<EnvLauncher*>(harness_->launcher.get())->ZygotePid();
  for (int i = 0; i < 200; ++i) {
    SandboxSpec spec = harness_->Spec("cycle-" + std::to_string(i));
    spec.env["MODE"] = "ready";
    auto h = harness_->SpawnSync(spec);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    char frame[64];
    ASSERT_GT(::read(h->control_fd, frame, sizeof(frame)), 8) << i;
    harness_->launcher->Kill(spec.id);
    ASSERT_TRUE(harness_->WaitExit(spec.id)) << i;
    ::close(h->control_fd);
    ::close(h->log_fd);
  }
  EXPECT_TRUE(CgroupChildren().empty());
  // What the zygote still has are its pre-forked pool children (unassigned,
  // waiting): at most LauncherOptions::prefork_max of them (200 spawns in a
  // row are a burst that grows the pool; pool_sizer.h).
  EXPECT_LE(Processes(zygote).size(), static_cast<size_t>(LauncherOptions{}.prefork_max));
  // That burst emptied the pool time and again: the idle zygote refills it
  // beyond prefork, for the next burst.
  bool grew = false;
  for (int i = 0; i < 300 && !grew; ++i) {
    grew = Processes(zygote).size() > static_cast<size_t>(LauncherOptions{}.prefork);
    if (!grew) ::usleep(10000);
  }
  EXPECT_TRUE(grew);
  EXPECT_TRUE(Processes(0).empty());
  EXPECT_EQ(Mountinfo(), mounts_before);
  EXPECT_EQ(harness_->launcher->LiveCount(), 0);
}

TEST_F(SandboxTest, ZygoteDeathKillsSandboxesAndRestarts) {
  SandboxSpec spec = harness_->Spec(NextId());
  spec.env["MODE"] = "ready";
  auto h = harness_->SpawnSync(spec);
  ASSERT_TRUE(h.ok());
  char frame[64];
  ASSERT_GT(::read(h->control_fd, frame, sizeof(frame)), 8);
  int zygote = static_cast<EnvLauncher*>(harness_->launcher.get())->ZygotePid();
  ASSERT_GT(zygote, 0);
  int init = InitOf(h->pid);
  ASSERT_GT(init, 0);
  ::kill(zygote, SIGKILL);
  ASSERT_TRUE(harness_->WaitExit(spec.id));
  EXPECT_EQ(harness_->exits[spec.id].signal, SIGKILL);
  EXPECT_TRUE(NoSandboxProcessesWithin(2000));
  // The init was reparented to us (a child subreaper) and reaped, not left a zombie.
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(init)));
  ::close(h->control_fd);
  ::close(h->log_fd);
  auto o = Probe("result['ok'] = 1\n");
  EXPECT_EQ(o.result["ok"], 1) << o.spawn_error << o.raw << o.log;
  EXPECT_TRUE(CgroupChildren().empty());
}

TEST_F(SandboxTest, SummaryNamesTheIsolation) {
  std::string s = harness_->launcher->IsolationSummary();
  EXPECT_NE(s.find("namespaces pid,mnt,ipc,uts,net"), std::string::npos) << s;
  EXPECT_NE(s.find("seccomp"), std::string::npos) << s;
  EXPECT_NE(s.find("uid 993"), std::string::npos) << s;
}

TEST(SandboxFailureTest, FailedIsolationStepNeverRunsUserCode) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  TestEnv env;
  for (const char* step : {"mounts", "creds", "seccomp"}) {
    LauncherOptions options = env.Options(kParent + "-fail");
    options.test_fail_step = step;
    Harness h(options);
    h.bundle_dir = env.bundle_dir;
    Status started = h.Start();
    ASSERT_TRUE(started.ok()) << step << ": " << started.ToString();
    auto o = h.RunProbe("result['ran'] = True\n", h.Spec("f1"));
    ASSERT_TRUE(o.exited) << step;
    EXPECT_EQ(o.exit.exit_code, 127) << step;
    EXPECT_TRUE(o.raw.empty()) << o.raw;
    EXPECT_NE(o.log.find(std::string("sandbox isolation step '") + step + "'"), std::string::npos)
        << o.log;
  }
}

// Rootless mode, here started as root (the e2e tests run it as nobody): the
// same identity and seccomp, rlimits instead of cgroups.
TEST(SandboxRootlessTest, IdentityAndRlimitsWithoutCgroups) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  TestEnv env;
  LauncherOptions options = env.Options(kParent + "-rootless");
  options.isolation = Isolation::kRootless;
  Harness h(options);
  h.bundle_dir = env.bundle_dir;
  Status started = h.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  EXPECT_EQ(h.launcher->IsolationSummary().rfind("ROOTLESS", 0), 0u);
  SandboxSpec spec = h.Spec("r1");
  spec.pids_max = 40;
  spec.memory_mb = 64;
  auto o = h.RunProbe(R"(
import os, resource
result.update(pid=os.getpid(), uid=os.getuid(), gid=os.getgid(),
              nproc=resource.getrlimit(resource.RLIMIT_NPROC)[0],
              data=resource.getrlimit(resource.RLIMIT_DATA)[0],
              uid_map=open('/proc/self/uid_map').read().split())
for line in open('/proc/self/status'):
    k, _, v = line.partition(':')
    if k in ('CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp', 'VmData'):
        result[k] = v.strip()
)",
                      spec);
  ASSERT_TRUE(o.result.is_object()) << o.raw << o.log;
  EXPECT_EQ(o.result["pid"], 2);
  EXPECT_EQ(o.result["uid"], 993);
  EXPECT_EQ(o.result["gid"], 993);
  EXPECT_EQ(o.result["uid_map"], nlohmann::json::array({"993", "0", "1"}));
  EXPECT_EQ(o.result["CapEff"], "0000000000000000");
  EXPECT_EQ(o.result["CapBnd"], "0000000000000000");
  EXPECT_EQ(o.result["NoNewPrivs"], "1");
  EXPECT_EQ(o.result["Seccomp"], "2");
  EXPECT_EQ(o.result["nproc"], 40);
  // The function's 64 MB on top of what the child inherited from the zygote.
  uint64_t data = o.result["data"].get<uint64_t>();
  uint64_t vm_data_kb = std::stoull(o.result["VmData"].get<std::string>());
  EXPECT_GE(data, (vm_data_kb << 10) + (64ull << 20) - (16ull << 20));
  EXPECT_LE(data, (vm_data_kb << 10) + (64ull << 20));
  EXPECT_TRUE(o.exited);
  EXPECT_FALSE(std::filesystem::exists("/sys/fs/cgroup/memory/" + kParent + "-rootless"));
}

TEST(SandboxRootlessTest, FailedUsernsStepNeverRunsUserCode) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  TestEnv env;
  LauncherOptions options = env.Options(kParent + "-rootless");
  options.isolation = Isolation::kRootless;
  options.test_fail_step = "userns";
  Harness h(options);
  h.bundle_dir = env.bundle_dir;
  ASSERT_TRUE(h.Start().ok());
  auto o = h.RunProbe("result['ran'] = True\n", h.Spec("r2"));
  ASSERT_TRUE(o.exited);
  EXPECT_EQ(o.exit.exit_code, 127);
  EXPECT_TRUE(o.raw.empty()) << o.raw;
  EXPECT_NE(o.log.find("sandbox isolation step 'userns'"), std::string::npos) << o.log;
}

TEST(SandboxFailureTest, StartReportsABrokenRuntime) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  TestEnv env;
  std::ofstream(env.runtime_dir + "/gust_runtime/zygote.py") << "raise ImportError('boom')\n";
  Harness h(env.Options(kParent + "-fail"));
  Status s = h.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("boom"), std::string::npos) << s.ToString();
}

TEST(SandboxFailureTest, StartNamesAMissingZygoteModule) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  TestEnv env;
  LauncherOptions o = env.Options(kParent + "-nomodule");
  o.zygote_module = env.dir + "/nowhere/_gust_zygote.so";
  Harness h(o);
  Status s = h.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("zygote's module " + o.zygote_module), std::string::npos)
      << s.ToString();
}

// A module that is there but cannot be imported: python3 exits before "ready".
TEST(SandboxFailureTest, StartReportsAZygoteModuleThatDoesNotLoad) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  TestEnv env;
  LauncherOptions o = env.Options(kParent + "-badmodule");
  std::filesystem::create_directories(env.dir + "/bad");
  o.zygote_module = env.dir + "/bad/_gust_zygote.so";
  std::ofstream(o.zygote_module) << "not an ELF file\n";
  Harness h(o);
  Status s = h.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exited during start-up"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(o.zygote_module), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace gust::sandbox

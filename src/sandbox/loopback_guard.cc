#include "sandbox/loopback_guard.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

namespace gust::sandbox {

namespace {

// Where Debian puts nft (and /sbin on merged-/usr systems); the engine's PATH
// may not hold sbin dirs.
const char* FindNft() {
  for (const char* path : {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return nullptr;
}

// Runs `nft -f script`; an error carries nft's stderr.
Status RunNft(const std::string& script, const std::string& scratch_dir) {
  const char* nft = FindNft();
  if (nft == nullptr) {
    return Status::NotFound("nft not found (Debian package nftables)");
  }
  std::string script_path = scratch_dir + "/loopback_guard.nft";
  std::string err_path = scratch_dir + "/loopback_guard.err";
  {
    std::ofstream out(script_path, std::ios::trunc);
    out << script;
    if (!out) return Status::IoError("write " + script_path);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // none of the engine's sockets
  std::string arg0 = nft, flag = "-f";
  std::vector<char*> argv = {arg0.data(), flag.data(), script_path.data(), nullptr};
  std::string path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {path.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, nft, &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::FromErrno(std::string("spawn ") + nft, rc);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno("waitpid nft", errno);
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return Status::Ok();
  std::ifstream in(err_path);
  std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!err.empty() && std::isspace(static_cast<unsigned char>(err.back()))) err.pop_back();
  if (err.size() > 400) err.resize(400);
  return Status::Unavailable(std::string(nft) + " -f failed: " +
                             (err.empty() ? "exit status " + std::to_string(wstatus) : err));
}

}  // namespace

std::string LoopbackGuardTable(const std::string& cgroup_parent) {
  std::string table;
  for (char c : cgroup_parent) {
    table += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return table;
}

std::string LoopbackGuardRules(const std::string& table, uint32_t sandbox_uid) {
  // Declaring before deleting makes the delete succeed when no table exists,
  // and the whole file is one transaction: there is no moment without a rule.
  std::string rules = R"(table inet TABLE {}
delete table inet TABLE
table inet TABLE {
  chain out {
    type filter hook output priority 0; policy accept;
    oif "lo" meta skuid UID meta l4proto { tcp, udp } th dport 53 accept
    oif "lo" meta skuid UID reject with icmpx type admin-prohibited
  }
}
)";
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"TABLE", table},
                                   {"UID", std::to_string(sandbox_uid)}}) {
    for (size_t at = rules.find(key); at != std::string::npos; at = rules.find(key, at)) {
      rules.replace(at, key.size(), value);
      at += value.size();
    }
  }
  return rules;
}

Status InstallLoopbackGuard(const std::string& table, uint32_t sandbox_uid,
                            const std::string& scratch_dir) {
  return RunNft(LoopbackGuardRules(table, sandbox_uid), scratch_dir);
}

void RemoveLoopbackGuard(const std::string& table, const std::string& scratch_dir) {
  (void)RunNft("table inet " + table + " {}\ndelete table inet " + table + "\n", scratch_dir);
}

}  // namespace gust::sandbox

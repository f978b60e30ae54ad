// `gust up` and `gust down`: run the engine in the foreground or as a daemon,
// and stop it.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "api/engine_server.h"
#include "cli/api_client.h"
#include "cli/cli.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/logging.h"

namespace gust::cli {
namespace {

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The runtime ships beside the binary: build tree (build/bin -> runtimes/python)
// or an install (bin -> share/gust/runtimes/python); GUST_RUNTIME_DIR overrides.
std::string FindRuntimeDir() {
  if (const char* env = std::getenv("GUST_RUNTIME_DIR"); env && *env) return env;
  std::string exe = ExecutableDir();
  for (const std::string& candidate :
       {exe + "/../../runtimes/python", exe + "/../share/gust/runtimes/python",
        exe + "/../runtimes/python"}) {
    if (IsDir(candidate + "/gust_runtime")) {
      char resolved[PATH_MAX];
      if (::realpath(candidate.c_str(), resolved)) return resolved;
    }
  }
  return "";
}

// python/gust (the client library, for map tasks that use gust themselves):
// $GUST_CLIENT_DIR, else beside the runtime in a source tree or an install;
// "" when absent (a task can still ship gust in its own bundle).
std::string FindClientDir(const std::string& runtime_dir) {
  if (const char* env = std::getenv("GUST_CLIENT_DIR"); env && *env) return env;
  for (const std::string& candidate :
       {runtime_dir + "/../../python/gust", runtime_dir + "/../python/gust"}) {
    if (std::filesystem::exists(candidate + "/__init__.py")) {
      char resolved[PATH_MAX];
      if (::realpath(candidate.c_str(), resolved)) return resolved;
    }
  }
  return "";
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int ReadPid(const std::string& pid_file) {
  std::ifstream in(pid_file);
  int pid = 0;
  in >> pid;
  return pid;
}

// The engine's isolation summary if an engine answers at url (signing the
// question with creds when the engine is to check signatures).
std::optional<std::string> EngineIsolation(const std::string& url, const EngineConfig& config) {
  // Over TLS the probe trusts exactly the certificate this engine serves
  // (its name need not match the address it is reached at here).
  auto client = http::Client::Create(url, {config.tls_cert_file, /*verify_host=*/false});
  if (!client.ok()) return std::nullopt;
  if (!config.access_key_id.empty())
    (*client)->SetCredentials({config.access_key_id, config.secret_access_key});
  auto r = (*client)->Do(http::beast_http::verb::get, "/v1/health", "", {},
                         std::chrono::milliseconds(1000));
  if (r.ok() && r->status == 403) return "? (an engine answers, but refuses this key)";
  if (!r.ok() || r->status != 200) return std::nullopt;
  auto health = nlohmann::json::parse(r->body, nullptr, false);
  return health.is_object() ? health.value("isolation", std::string("?")) : "?";
}

// The summary's line about authentication.
std::string AuthLine(const EngineConfig& c) {
  if (!c.access_key_id.empty()) {
    return "  auth: on (AWS SigV4, access key " + c.access_key_id + ")\n";
  }
  if (!api::IsLoopbackHost(c.host)) {
    return "  auth: OFF\n  WARNING: --insecure-no-auth: bound to " + c.host +
           " without credentials: anyone who can reach this address can deploy and run "
           "code (create credentials with `gust auth init`)\n";
  }
  return "  auth: off (no credentials; `gust auth init` creates some)\n";
}

// The summary's lines about TLS and authentication, and cluster mode's.
std::string AuthSummary(const EngineConfig& c) {
  std::string tls = c.tls_cert_file.empty()
                        ? ""
                        : "  tls: on (certificate " + c.tls_cert_file +
                              "; clients trust it through GUST_CA_BUNDLE or AWS_CA_BUNDLE)\n";
  std::string cluster = c.cluster_conninfo.empty()
                            ? ""
                            : "  cluster: node " + c.node_name + ", advertised at " +
                                  c.advertise_url + " (`gust cluster status`)\n";
  return tls + AuthLine(c) + cluster;
}

// --access-key/--secret-key, else the state dir's credentials file (if any).
// False (and a failed exit code) when they are inconsistent or unreadable.
bool LoadEngineCredentials(EngineConfig& c, int* exit_code) {
  if (c.access_key_id.empty() != c.secret_access_key.empty()) {
    *exit_code = Fail("--access-key and --secret-key go together");
    return false;
  }
  if (!c.access_key_id.empty()) return true;
  auto file = ReadCredentialsFile(CredentialsPath(c.state_dir));
  if (file.ok()) {
    c.access_key_id = file->access_key_id;
    c.secret_access_key = file->secret_access_key;
    return true;
  }
  if (file.status().code() == Code::kNotFound) return true;
  *exit_code = Fail(file.status().message());
  return false;
}

// A node name: what `gust cluster status` shows and GUST_NODE carries.
bool IsNodeName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// --cluster's companions: a node name (default: the host name) and the URL others reach this
// engine at (default: its own --host and --port).
Status CheckClusterOptions(EngineConfig& c) {
  if (c.cluster_conninfo.empty()) {
    if (!c.node_name.empty() || !c.advertise_url.empty()) {
      return Status::InvalidArgument("--node-name and --advertise go with --cluster");
    }
    return Status::Ok();
  }
  if (c.node_name.empty()) {
    char host[256] = {0};
    if (::gethostname(host, sizeof host - 1) == 0) c.node_name = host;
    c.node_name = c.node_name.substr(0, c.node_name.find('.'));
  }
  if (!IsNodeName(c.node_name)) {
    return Status::InvalidArgument("--node-name '" + c.node_name +
                                   "' is not a node name (1-63 letters, digits, '.', '_', '-')");
  }
  if (c.advertise_url.empty()) {
    if (c.port == 0) {
      return Status::InvalidArgument(
          "--port 0 (any free port) cannot be advertised: give --advertise http://ADDRESS:PORT "
          "or a port");
    }
    if (c.host == "0.0.0.0" || c.host == "::") {
      return Status::InvalidArgument("--host " + c.host +
                                     " is every address: say which one other nodes reach this "
                                     "engine at with --advertise http://ADDRESS:PORT");
    }
    std::string host = c.host.find(':') != std::string::npos ? "[" + c.host + "]" : c.host;
    c.advertise_url = std::string(c.tls_cert_file.empty() ? "http://" : "https://") + host + ":" +
                      std::to_string(c.port);
  }
  if (c.advertise_url.rfind("http://", 0) != 0 && c.advertise_url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("--advertise '" + c.advertise_url +
                                   "' is not an http:// or https:// URL");
  }
  // Checked now, not at the first call to a peer: an unreadable bundle would fail every one.
  c.cluster_ca_file = ClientTlsFromEnv().ca_file;
  if (!c.cluster_ca_file.empty() && ::access(c.cluster_ca_file.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("the CA bundle peer nodes are checked against (" +
                                   c.cluster_ca_file + ", from $GUST_CA_BUNDLE or " +
                                   "$AWS_CA_BUNDLE) cannot be read: " + std::strerror(errno));
  }
  return Status::Ok();
}

struct UpOptions {
  EngineConfig config;
  bool detach = false;
  std::string keep_alive = "10m";
  std::string job_ttl = "1h";
  std::string max_timeout = "7d";
  std::string async_retry_base = "1m";
  std::string cluster_lease = "10s";
  std::string async_retention = "1d";
  std::string http_idle_timeout = "2m";
  bool async_no_fsync = false;
  bool map_no_durability = false;
  std::string map_store_interval = "100ms";
  std::string preload;
  std::vector<std::string> python_preload;  // --python-preload PYTHON=MODULES, as given
#ifdef GUST_ZYGOTE_MODULE
  std::string zygote = "python";
#else
  std::string zygote = "embedded";
#endif
};

int RunForeground(UpOptions& opts) {
  InitLogging(opts.config.log_level);
  std::string pid_file = opts.config.state_dir + "/engine.pid";
  api::EngineServer server(opts.config);
  Status st = server.Run([&](const std::string& url, const std::string& isolation) {
    std::ofstream(pid_file) << ::getpid() << "\n";
    std::printf("gust engine listening on %s\n  state dir: %s\n  isolation: %s\n%s", url.c_str(),
                opts.config.state_dir.c_str(), isolation.c_str(), AuthSummary(opts.config).c_str());
    std::fflush(stdout);
  });
  if (ReadPid(pid_file) == ::getpid()) ::unlink(pid_file.c_str());
  if (!st.ok()) {
    std::fprintf(stderr, "gust: the engine could not start: %s\n", st.message().c_str());
    return 3;
  }
  return 0;
}

int RunDetached(UpOptions& opts) {
  std::string log_path = opts.config.state_dir + "/engine.log";
  std::string url = std::string(opts.config.tls_cert_file.empty() ? "http://" : "https://") +
                    opts.config.host + ":" + std::to_string(opts.config.port);
  if (auto isolation = EngineIsolation(url, opts.config)) {
    std::printf("gust engine already running at %s\n  isolation: %s\n", url.c_str(),
                isolation->c_str());
    return 0;
  }
  std::fflush(stdout);
  pid_t child = ::fork();
  if (child < 0) return Fail("fork failed");
  if (child == 0) {
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDONLY);
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    if (null_fd > 2) ::close(null_fd);
    if (log_fd > 2) ::close(log_fd);
    _exit(RunForeground(opts));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(child, &status, WNOHANG) == child) {
      std::fprintf(stderr, "gust: the engine exited during start-up; see %s:\n", log_path.c_str());
      std::ifstream in(log_path);
      std::string line, tail;
      while (std::getline(in, line)) tail = line;
      std::fprintf(stderr, "  %s\n", tail.c_str());
      return 3;
    }
    if (auto isolation = EngineIsolation(url, opts.config)) {
      std::printf("gust engine running at %s (pid %d, log %s)\n  isolation: %s\n%s", url.c_str(),
                  child, log_path.c_str(), isolation->c_str(), AuthSummary(opts.config).c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Fail("the engine did not answer within 30 s; see " + log_path);
}

}  // namespace

void AddEngineCommands(CLI::App& app, std::shared_ptr<CliState> state) {
  auto opts = std::make_shared<UpOptions>();
  opts->config.state_dir = DefaultStateDir();
  auto* up =
      app.add_subcommand("up", "Run the engine (foreground; -d to run it in the background)");
  up->add_option("--port", opts->config.port, "TCP port")->capture_default_str();
  up->add_option("--host", opts->config.host,
                 "Address to bind (loopback by default). Any other address needs credentials "
                 "(`gust auth init`, or --access-key/--secret-key) or --insecure-no-auth")
      ->capture_default_str();
  up->add_option("--access-key", opts->config.access_key_id,
                 "Require every API request to be signed (AWS SigV4) with this access key id "
                 "(default: the one in <state dir>/credentials, written by `gust auth init`)");
  up->add_option("--secret-key", opts->config.secret_access_key,
                 "The access key's secret (visible to `ps`: prefer `gust auth init`)");
  up->add_option("--tls-cert", opts->config.tls_cert_file,
                 "Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key. "
                 "Clients trust it through GUST_CA_BUNDLE (gust) or AWS_CA_BUNDLE / --ca-bundle / "
                 "verify= (aws CLI, boto3)")
      ->check(CLI::ExistingFile);
  up->add_option("--tls-key", opts->config.tls_key_file,
                 "The PEM private key of --tls-cert (keep it mode 0600)")
      ->check(CLI::ExistingFile);
  up->add_flag("--network-host-access", opts->config.network_host_access,
               "Let sandboxes with network (--network, map(network=True)) reach this host's own "
               "services: its loopback and its addresses (a local database, the engine's API). "
               "By default they reach the internet and the LAN only (docs/SECURITY.md)");
  up->add_flag("--insecure-no-auth", opts->config.insecure_no_auth,
               "Serve a non-loopback address without credentials: anyone who can reach it can "
               "deploy and run code");
  up->add_option("--state-dir", opts->config.state_dir,
                 "Where functions, code, logs and records live ($GUST_STATE_DIR, ~/.gust)")
      ->capture_default_str();
  up->add_flag("-d,--detach", opts->detach, "Run in the background and return once it serves");
  up->add_option("--keep-alive", opts->keep_alive,
                 "Idle time before a warm sandbox is destroyed (e.g. 90s, 10m)")
      ->capture_default_str();
  up->add_option("--preload", opts->preload,
                 "Comma-separated modules the zygote imports once (e.g. numpy,sklearn)");
  up->add_option("--max-sandboxes", opts->config.max_sandboxes, "Engine-wide cap on live sandboxes")
      ->capture_default_str();
  up->add_option("--concurrency", opts->config.default_concurrency,
                 "Default per-function concurrency")
      ->capture_default_str();
  up->add_option("--prefork", opts->config.prefork,
                 "Generic sandboxes kept forked ahead of demand (0: off)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  up->add_option("--prefork-max", opts->config.prefork_max,
                 "After a burst of cold starts that emptied the pool, refill it up to this many "
                 "for 10 minutes (the next burst starts faster; ~3 MB each, lowered to what an "
                 "eighth of the free memory holds)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  up->add_option("--job-ttl", opts->job_ttl,
                 "How long a finished map job's results are kept (e.g. 30m, 1h, 2d)")
      ->capture_default_str();
  up->add_option("--max-timeout", opts->max_timeout,
                 "Ceiling on every function's and map task's timeout (seconds, or e.g. 12h, "
                 "7d; at most 365d): Lambda's 900 s does not apply, a function or map asks for "
                 "up to this and a map task with timeout=0 runs up to it")
      ->capture_default_str();
  up->add_option("--max-memory", opts->config.max_memory_mb,
                 "Ceiling on every function's and map task's memory in MB (default 0: the "
                 "machine's, MemTotal or this process's cgroup limit if lower; Lambda's 10240 "
                 "does not apply)")
      ->check(CLI::Range(0, kHardMaxMemoryMb))
      ->capture_default_str();
  up->add_option("--max-map-depth", opts->config.max_map_depth,
                 "How deep a task's own maps may nest (a map from a task is depth 1; "
                 "docs/MAP.md, \"Maps from a task\")")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  up->add_option("--isolation", opts->config.isolation,
                 "auto: full as root, else rootless; full: namespaces + cgroups (root only); "
                 "rootless: user namespaces + rlimits (no cgroup limits)")
      ->check(CLI::IsMember({"auto", "full", "rootless"}))
      ->capture_default_str();
  up->add_option("--zygote", opts->zygote,
                 "What the sandboxes fork from. python: /usr/bin/python3 running the zygote "
                 "module (_gust_zygote.so beside gust; Python code runs ~15% faster); "
                 "embedded: gust-sandbox-init, which embeds libpython (sanitizer builds)")
      ->check(CLI::IsMember({"python", "embedded"}))
      ->capture_default_str();
  up->add_option("--log-level", opts->config.log_level, "trace|debug|info|warn|error")
      ->capture_default_str();
  up->add_option("--async-concurrency", opts->config.async_concurrency,
                 "Asynchronous invocations running at once, engine-wide (also the most that can "
                 "run twice after a crash)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  up->add_option("--async-retry-delay", opts->async_retry_base,
                 "Back-off before an async event's first retry after a function error; the "
                 "second waits twice as long (Lambda: about 1m, then 2m; e.g. 500ms in tests)")
      ->capture_default_str();
  up->add_option("--async-retention", opts->async_retention,
                 "How long finished async invocations stay visible to `gust get-invocation` "
                 "(dead letters stay until redriven)")
      ->capture_default_str();
  up->add_option("--async-window", opts->config.async_window_events,
                 "Queued async events held in memory; the rest wait on disk")
      ->check(CLI::Range(16, 10'000'000))
      ->capture_default_str();
  up->add_option("--http-idle-timeout", opts->http_idle_timeout,
                 "Close a client connection that sends or takes no bytes for this long, one "
                 "whose request headers are not complete after it, and one whose response "
                 "is not taken within it (slow clients)")
      ->capture_default_str();
  up->add_option("--trusted-python-owner", opts->config.trusted_python_owners,
                 "A uid besides root and the engine's whose Python environments (a venv's or "
                 "conda env's files) sandboxes may run (repeatable; docs/ENVIRONMENTS.md)")
      ->check(CLI::Range(uint32_t{0}, uint32_t{4294967294U}));
  up->add_option("--python-preload", opts->python_preload,
                 "PYTHON=MODULES: modules the zygote of the Python environment whose interpreter "
                 "is PYTHON (the absolute path clients run, e.g. /home/u/.venv/bin/python) "
                 "imports once, comma-separated (repeatable; docs/ENVIRONMENTS.md)");
  up->add_option("--cluster", opts->config.cluster_conninfo,
                 "Run as a node of the cluster whose state is in this PostgreSQL database (a "
                 "libpq connection string: postgresql://USER@HOST[,STANDBY]/DB; prepared once "
                 "with `gust cluster init`; docs/CLUSTER.md). Without it the engine keeps its "
                 "state in the state dir (SQLite)");
  up->add_option("--node-name", opts->config.node_name,
                 "With --cluster: this node's name, unique in the cluster (letters, digits, "
                 "'.', '_', '-'; default: the host name); functions see it as $GUST_NODE");
  up->add_option("--advertise", opts->config.advertise_url,
                 "With --cluster: the URL other nodes and clients reach this engine at, e.g. "
                 "http://10.0.0.11:7700 (default: http(s)://--host:--port, which must then not "
                 "be a wildcard address)");
  up->add_option("--cluster-lease", opts->cluster_lease,
                 "With --cluster: how long this node stays a member (and holds its async "
                 "events) without a heartbeat, which it sends every fifth of it; also how long "
                 "a node may stay silent in a call forwarded to it. Shorter than the default "
                 "only to test failures quickly (2s to 5m)")
      ->capture_default_str();
  up->add_flag("--async-no-fsync", opts->async_no_fsync,
               "Benchmarks only: accept async events without fsync (they survive a crash of the "
               "engine, not of the machine)");
  up->add_flag("--map-no-durability", opts->map_no_durability,
               "With --cluster, benchmarks only: do not record map jobs in PostgreSQL (a job then "
               "dies with the node that owns it; docs/CLUSTER.md, step 5b)");
  up->add_option("--map-store-interval", opts->map_store_interval,
                 "With --cluster: how often, at most, a running map job's finished results are "
                 "stored in PostgreSQL (one row each time; a client gets them before). Longer: "
                 "fewer writes; a node taking the job over from a dead owner runs again the "
                 "tasks finished since the last store (10ms to 1h)")
      ->capture_default_str();
  up->callback([opts, state] {
    if (Status s = CheckClusterOptions(opts->config); !s.ok()) {
      state->exit_code = Fail(s.message());
      return;
    }
    // A duration flag in whole seconds, or a failed command naming it.
    auto seconds = [&state](const char* flag, const std::string& text, int64_t min_ms, int* out) {
      int64_t ms = ParseDurationMs(text);
      if (ms < min_ms) {
        state->exit_code =
            Fail(std::string(flag) + " '" + text + "' is not a duration" +
                 (min_ms > 0 ? " of at least 1s" : "") + " (examples: 30s, 10m, 1h)");
        return false;
      }
      *out = static_cast<int>(ms / 1000);
      return true;
    };
    if (!seconds("--keep-alive", opts->keep_alive, 0, &opts->config.keep_alive_s) ||
        !seconds("--job-ttl", opts->job_ttl, 1000, &opts->config.job_ttl_s) ||
        !seconds("--async-retention", opts->async_retention, 1000,
                 &opts->config.async_retention_s) ||
        !seconds("--http-idle-timeout", opts->http_idle_timeout, 1000,
                 &opts->config.http_idle_timeout_s)) {
      return;
    }
    int64_t max_timeout_ms = ParseDurationMs(opts->max_timeout);
    if (max_timeout_ms < 1000 || max_timeout_ms > int64_t{kHardMaxTimeoutS} * 1000) {
      state->exit_code = Fail("--max-timeout '" + opts->max_timeout +
                              "' is not a duration from 1s to 365d (examples: 3600, 12h, 7d)");
      return;
    }
    opts->config.max_timeout_s = static_cast<int>(max_timeout_ms / 1000);
    if (opts->config.max_memory_mb != 0 && opts->config.max_memory_mb < kMinMemoryMb) {
      state->exit_code = Fail("--max-memory " + std::to_string(opts->config.max_memory_mb) +
                              " is below a sandbox's least, " + std::to_string(kMinMemoryMb) +
                              " MB (0: the machine's memory)");
      return;
    }
    int64_t retry_ms = ParseDurationMs(opts->async_retry_base);
    if (retry_ms < 100) {
      state->exit_code = Fail("--async-retry-delay '" + opts->async_retry_base +
                              "' is not a duration of at least 100ms (examples: 500ms, 1m)");
      return;
    }
    opts->config.async_retry_base_ms = retry_ms;
    // A duration flag in milliseconds within [min_ms, max_ms] (`range` says it), or a failed
    // command naming it.
    auto bounded_ms = [&state](const char* flag, const std::string& text, int64_t min_ms,
                               int64_t max_ms, const char* range, int64_t* out) {
      int64_t ms = ParseDurationMs(text);
      if (ms < min_ms || ms > max_ms) {
        state->exit_code =
            Fail(std::string(flag) + " '" + text + "' is not a duration from " + range);
        return false;
      }
      *out = ms;
      return true;
    };
    if (!bounded_ms("--cluster-lease", opts->cluster_lease, 2000, 300'000,
                    "2s to 5m (examples: 10s, 4s)", &opts->config.cluster_lease_ms) ||
        !bounded_ms("--map-store-interval", opts->map_store_interval, 10, 3'600'000,
                    "10ms to 1h (examples: 100ms, 2s)", &opts->config.map_store_interval_ms)) {
      return;
    }
    if (opts->config.tls_cert_file.empty() != opts->config.tls_key_file.empty()) {
      state->exit_code = Fail("--tls-cert and --tls-key go together");
      return;
    }
    // Absolute: the summary names them, and a detached engine's probe reads them.
    for (std::string* path : {&opts->config.tls_cert_file, &opts->config.tls_key_file}) {
      if (!path->empty()) *path = std::filesystem::absolute(*path).string();
    }
    opts->config.async_fsync = !opts->async_no_fsync;
    opts->config.map_durability = !opts->map_no_durability;
    opts->config.preload_modules = SplitCommas(opts->preload);
    for (const std::string& entry : opts->python_preload) {
      size_t eq = entry.find('=');
      std::vector<std::string> modules =
          eq == std::string::npos ? std::vector<std::string>{} : SplitCommas(entry.substr(eq + 1));
      if (eq == 0 || entry[0] != '/' || modules.empty()) {
        state->exit_code = Fail("--python-preload '" + entry +
                                "' is not PYTHON=MODULE[,MODULE...] with PYTHON an absolute "
                                "interpreter path (e.g. /home/u/.venv/bin/python=numpy,pandas)");
        return;
      }
      std::vector<std::string>& list = opts->config.python_env_preload[entry.substr(0, eq)];
      list.insert(list.end(), modules.begin(), modules.end());
    }
    opts->config.init_binary = ExecutableDir() + "/gust-sandbox-init";
    if (opts->zygote == "python") {
#ifdef GUST_ZYGOTE_MODULE
      opts->config.zygote_module = ExecutableDir() + "/" GUST_ZYGOTE_MODULE;
#else
      state->exit_code = Fail(
          "--zygote python: this gust was built without the zygote module "
          "(GUST_ZYGOTE_IN_PYTHON=OFF or a sanitizer build); use --zygote embedded");
      return;
#endif
    }
    opts->config.runtime_dir = FindRuntimeDir();
    if (opts->config.runtime_dir.empty()) {
      state->exit_code = Fail("cannot find the Python runtime (runtimes/python) beside " +
                              ExecutableDir() + "; set GUST_RUNTIME_DIR");
      return;
    }
    opts->config.client_dir = FindClientDir(opts->config.runtime_dir);
    char resolved[PATH_MAX];
    std::error_code ec;
    std::filesystem::create_directories(opts->config.state_dir, ec);
    if (ec) {
      state->exit_code =
          Fail("cannot create the state dir " + opts->config.state_dir + ": " + ec.message());
      return;
    }
    if (::realpath(opts->config.state_dir.c_str(), resolved)) opts->config.state_dir = resolved;
    if (!LoadEngineCredentials(opts->config, &state->exit_code)) return;
    state->exit_code = opts->detach ? RunDetached(*opts) : RunForeground(*opts);
  });

  auto down_dir = std::make_shared<std::string>(DefaultStateDir());
  auto* down = app.add_subcommand("down", "Stop the engine started with `gust up -d`");
  down->add_option("--state-dir", *down_dir, "State dir of the engine to stop")
      ->capture_default_str();
  down->callback([down_dir, state] {
    std::string pid_file = *down_dir + "/engine.pid";
    int pid = ReadPid(pid_file);
    if (pid <= 0 || ::kill(pid, 0) != 0) {
      std::printf("no engine running (no live pid in %s)\n", pid_file.c_str());
      return;
    }
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (::kill(pid, 0) != 0) {
        std::printf("gust engine stopped (pid %d)\n", pid);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    std::printf("gust engine did not stop within 10 s: killed (pid %d)\n", pid);
  });
}

}  // namespace gust::cli

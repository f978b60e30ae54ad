// EngineConfig: every knob of one engine process, with the defaults a user
// gets from a bare `gust up`. Filled by the CLI (src/cli) and read everywhere
// else; a value type, copied freely.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gust {

// The zygote's pool of pre-forked sandboxes (src/sandbox/pool_sizer.h): its
// size at rest, and what bursts that emptied it may grow it to (the engine
// lowers the latter to what a slice of the host's free memory holds).
inline constexpr int kDefaultPrefork = 2;
inline constexpr int kDefaultPreforkMax = 1000;

// Limits of the machine, not of Lambda (whose 900 s and 10240 MB no machine of
// one's own needs). A function's or map task's memory is at least Lambda's
// 128 MB; its timeout and memory at most the engine's ceilings below, which
// the operator sets (`gust up --max-timeout/--max-memory`, docs/SECURITY.md
// "Ceilings"). The hard bounds are what a ceiling itself may be set to: they
// keep every product in the engine's arithmetic (a chunk of tasks' time in
// ns, a limit in bytes) far inside 64 bits.
inline constexpr int kMinMemoryMb = 128;
inline constexpr int kDefaultMaxTimeoutS = 7 * 86'400;  // a week
inline constexpr int kHardMaxTimeoutS = 365 * 86'400;   // a year
inline constexpr int kHardMaxMemoryMb = 1 << 24;        // 16 TiB

struct EngineConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 7700;
  std::string state_dir;      // metadata, blobs, bundles, logs, pid file
  std::string runtime_dir;    // runtimes/python (holds gust_runtime/)
  std::string init_binary;    // gust-sandbox-init
  std::string zygote_module;  // _gust_zygote.so run by /usr/bin/python3; "": init_binary
  std::vector<std::string> preload_modules;  // imported by the zygote before forking
  // The engine's own Python (LauncherOptions::python): functions and maps
  // whose environment is "" run in it (docs/ENVIRONMENTS.md).
  std::string python = "/usr/bin/python3";
  // Owners (uids) besides root and the engine's whose Python environments
  // sandboxes may run (gust up --trusted-python-owner; docs/ENVIRONMENTS.md).
  std::vector<uint32_t> trusted_python_owners;
  // Modules an environment's zygote imports once, by its interpreter's path
  // as the client names it (gust up --python-preload; docs/ENVIRONMENTS.md).
  std::map<std::string, std::vector<std::string>> python_env_preload;
  int keep_alive_s = 600;         // idle seconds before a warm sandbox goes (scale to zero)
  int default_concurrency = 100;  // per function, unless reserved
  int max_sandboxes = 1000;       // engine-wide cap on live sandboxes
  int init_timeout_s = 10;        // Lambda's init phase limit
  int reaper_interval_ms = 1000;
  int prefork = kDefaultPrefork;         // generic sandboxes forked ahead of demand
  int prefork_max = kDefaultPreforkMax;  // what the pool grows to after bursts that emptied it
  // "auto" (full as root, else rootless), "full" (needs root) or "rootless"
  // (user namespaces + rlimits); see src/sandbox/sandbox.h.
  std::string isolation = "auto";
  // Ceilings on every function's and map task's timeout and memory. 0: the
  // machine's, filled in at start (MachineMemoryMb, src/sandbox/cgroups.h).
  int max_timeout_s = kDefaultMaxTimeoutS;
  int max_memory_mb = 0;
  int job_ttl_s = 3600;  // map job results kept this long after the job finished
  // How deep maps may nest: a task's map (through the sandbox channel,
  // src/api/channel_api.h) is at depth 1, a map of its tasks at 2, ...
  int max_map_depth = 3;
  // python/gust, the client library: bound read-only into sandboxes so a map
  // task can `import gust` ("": not offered).
  std::string client_dir;
  std::string log_level = "info";
  // A client connection quiet this long, or whose request headers or response
  // take longer, is closed (src/http/server.h; docs/SECURITY.md).
  int http_idle_timeout_s = 120;
  // Asynchronous invocations (docs/EVENTS.md).
  int async_concurrency = 32;            // events running at once, engine-wide
  int64_t async_retry_base_ms = 60'000;  // first retry after this, the second after twice it
  bool async_fsync = true;               // false: accepted events survive a crash, not a power loss
  int async_retention_s = 86'400;        // finished events' records kept this long
  int async_window_events = 10'000;      // queued events held in memory (the rest stay on disk)
  // Authentication (README "Security"). With an access key, every API request
  // must carry an AWS SigV4 signature made with it (src/http/sigv4.h); without
  // one nothing is checked, which the engine allows on loopback only unless
  // insecure_no_auth says otherwise.
  std::string access_key_id;
  std::string secret_access_key;
  bool insecure_no_auth = false;
  // Let network=true sandboxes reach this host's own services (docs/SECURITY.md,
  // "Network"); by default they are refused.
  bool network_host_access = false;
  // HTTPS (README "Security"): PEM certificate chain and private key, both or
  // neither (src/http/server.h). Empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Cluster mode (docs/CLUSTER.md): the shared PostgreSQL database's libpq connection string
  // (it may carry a password: never logged nor echoed). "" is the embedded engine on SQLite
  // and files, with no PostgreSQL code on any path.
  std::string cluster_conninfo;
  std::string node_name;      // this node's name in the cluster (GUST_NODE in sandboxes)
  std::string advertise_url;  // how other nodes and clients reach this node's API
  // The membership lease (a node that has not renewed it for this long is dead to the others,
  // and stops leasing itself), the lease of the async events it holds and how long a peer
  // node may stay silent in a forwarded call; heartbeats go every fifth of it
  // (docs/CLUSTER.md, "Membership and fencing"). Shorter only in tests.
  int64_t cluster_lease_ms = 10'000;
  // The certificates an https:// peer node is checked against ("": the system's CAs); `gust
  // up` takes it from $GUST_CA_BUNDLE, else $AWS_CA_BUNDLE, as the CLI does for an engine.
  std::string cluster_ca_file;
  // Map jobs recorded in PostgreSQL so that they survive their owner (docs/CLUSTER.md, "Step
  // 5b as built"); false (--map-no-durability, benchmarks only): a job dies with its owner.
  bool map_durability = true;
  // With map_durability: how often a running map job's results are stored, at most (one
  // PostgreSQL row each time); a takeover runs again the tasks of up to this long.
  int64_t map_store_interval_ms = 100;
};

}  // namespace gust

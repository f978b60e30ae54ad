#include "api/engine_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <optional>
#include <vector>

#include "api/api_context.h"
#include "api/channel_api.h"
#include "api/cluster_api.h"
#include "api/cluster_logs.h"
#include "api/cluster_maps.h"
#include "api/events_api.h"
#include "api/forwarder.h"
#include "api/gateway.h"
#include "api/gust_api.h"
#include "api/jobs_api.h"
#include "api/lambda_api.h"
#include "api/lambda_shapes.h"
#include "api/s3_api.h"
#include "api/schedules_api.h"
#include "common/clock.h"
#include "engine/async_invoker.h"
#include "engine/cluster_node.h"
#include "engine/function_feed.h"
#include "engine/invoker.h"
#include "engine/log_sink.h"
#include "engine/map_journal.h"
#include "engine/map_scaler.h"
#include "engine/map_takeover.h"
#include "http/router.h"
#include "http/server.h"
#include "http/sigv4.h"
#include "sandbox/cgroups.h"
#include "sandbox/pool_sizer.h"
#include "sandbox/sandbox.h"
#include "sandbox/unique_fd.h"
#include "schedule/scheduler.h"
#include "store/blob_store.h"
#include "store/code_bundle.h"
#include "store/event_queue.h"
#include "store/map_job_store.h"
#include "store/metadata_store.h"
#include "store/node_store.h"
#include "store/schedule_store.h"

namespace gust::api {

namespace {

// Creates path and any missing parents (like mkdir -p); mode applies to the last.
Status MakeDir(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IoError("cannot create " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return Status::Ok();
}

// The signing services the APIs accept: gust's clients, boto3 and the aws CLI
// sign for "lambda"; web apps may also be called as API Gateway
// ("execute-api") would be.
const std::vector<std::string> kApiServices = {http::sigv4::kService};
const std::vector<std::string> kWebServices = {"execute-api", http::sigv4::kService};

http::Response Refuse(const http::sigv4::Refusal& refusal) {
  return ErrorResponse({403, refusal.type, refusal.message});
}

http::Response RefusedBeforeRouting(http::beast_http::status status, const std::string& message) {
  int code = static_cast<int>(status);
  if (code == 413) return ErrorResponse({413, "RequestTooLargeException", message});
  return ErrorResponse({code, "InvalidRequestContentException", message});
}

// Where the channel's socket is bound: <dir>/engine.sock, or, when that path
// is too long for a sockaddr_un (a deep state dir), the same file reached
// through /proc/self/fd/<dir_fd>, which stays short.
std::string ChannelSocketPath(const std::string& dir, int dir_fd) {
  std::string path = dir + "/engine.sock";
  if (path.size() < sizeof(sockaddr_un{}.sun_path) || dir_fd < 0) return path;
  return "/proc/self/fd/" + std::to_string(dir_fd) + "/engine.sock";
}

// The engine's state: embedded (SQLite and files in the state dir) or the cluster's
// (PostgreSQL, with this node's membership row). Chosen once, at start.
struct Stores {
  std::unique_ptr<MetadataStore> metadata;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<EventQueue> events;
  std::unique_ptr<ScheduleStore> schedules;
  std::unique_ptr<NodeStore> nodes;      // cluster mode only
  NodeInfo self;                         // cluster mode only: what this node publishes
  int64_t epoch = 0;                     // cluster mode only: this start's membership epoch
  http::sigv4::Credentials cluster_key;  // cluster mode only: signs and admits forwards
  // Cluster mode only: map jobs' durable state; the journal's appends and the takeover's
  // reads each on a connection of their own.
  std::unique_ptr<MapJobStore> map_journal;
  std::unique_ptr<MapJobStore> map_reads;
};

Result<Stores> OpenEmbeddedStores(const EngineConfig& cfg) {
  const std::string& dir = cfg.state_dir;
  Stores s;
  GUST_ASSIGN_OR_RETURN(s.metadata, OpenSqliteMetadataStore(dir + "/metadata.db"));
  GUST_ASSIGN_OR_RETURN(s.blobs, OpenFileBlobStore(dir + "/blobs"));
  GUST_ASSIGN_OR_RETURN(s.events, OpenSqliteEventQueue(dir + "/queue.db", cfg.async_fsync));
  GUST_ASSIGN_OR_RETURN(s.schedules, OpenSqliteScheduleStore(dir + "/schedules.db"));
  return s;
}

// Checks the schema (never migrates it: `gust cluster init` does), joins the membership
// (the new epoch identifies this start's event leases) and opens the PostgreSQL stores.
Result<Stores> OpenClusterStores(const EngineConfig& cfg, const std::string& version) {
  const std::string& conninfo = cfg.cluster_conninfo;
  Stores s;
  GUST_RETURN_IF_ERROR(CheckPgClusterSchema(conninfo));
  GUST_ASSIGN_OR_RETURN(s.nodes, OpenPgNodeStore(conninfo, cfg.cluster_lease_ms));
  // Read once: nodes sign forwarded calls with it and accept the forwarded mark only on it.
  GUST_ASSIGN_OR_RETURN(auto key, s.nodes->ClusterCredential());
  s.cluster_key = {key.first, key.second};
  s.self.name = cfg.node_name;
  s.self.advertise_url = cfg.advertise_url;
  s.self.version = version;
  engine::MeasureNode(s.self);
  GUST_ASSIGN_OR_RETURN(int64_t epoch, s.nodes->Join(s.self));
  s.epoch = epoch;
  spdlog::info("cluster: joined as node {} (epoch {}), advertised at {}", cfg.node_name, epoch,
               cfg.advertise_url);
  GUST_ASSIGN_OR_RETURN(s.metadata, OpenPgMetadataStore(conninfo));
  // Code zips live in the database; each node keeps the ones it fetched as files.
  GUST_ASSIGN_OR_RETURN(s.blobs, OpenPgBlobStore(conninfo, cfg.state_dir + "/blob-cache"));
  GUST_ASSIGN_OR_RETURN(s.events,
                        OpenPgEventQueue(conninfo, cfg.node_name, epoch, cfg.cluster_lease_ms));
  GUST_ASSIGN_OR_RETURN(s.schedules, OpenPgScheduleStore(conninfo));
  GUST_ASSIGN_OR_RETURN(s.map_journal, OpenPgMapJobStore(conninfo));
  GUST_ASSIGN_OR_RETURN(s.map_reads, OpenPgMapJobStore(conninfo));
  return s;
}

constexpr const char* kVersion = "0.1.0";

// What still runs on a cluster node: published with every heartbeat (NodeInfo::activity)
// and what a drain waits for. Engine thread (the invoker's, the async invoker's and the
// map components' counts are its).
struct Activity {
  size_t invocations = 0;   // sync calls, async events' and map sessions' invocations
  size_t async_events = 0;  // leased events running here
  size_t map_jobs = 0;      // this node's own map jobs not finished
  size_t map_shares = 0;    // helper sessions of other nodes' jobs
  bool Idle() const {
    return invocations == 0 && async_events == 0 && map_jobs == 0 && map_shares == 0;
  }
  std::string Json() const {
    return nlohmann::json{{"invocations", invocations},
                          {"async_events", async_events},
                          {"map_jobs", map_jobs},
                          {"map_shares", map_shares}}
        .dump();
  }
};

// A draining node leaves only once every other node has read "draining" in a beat of its
// own (each beats every 2 s, ClusterNode): until then one may still forward a call here.
constexpr auto kDrainSettle = std::chrono::seconds(3);
constexpr auto kDrainPoll = std::chrono::milliseconds(250);

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

struct EngineServer::Impl {
  EngineConfig config;
  boost::asio::io_context io{1};
  std::atomic<bool> stopping{false};
};

EngineServer::EngineServer(EngineConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}

EngineServer::~EngineServer() = default;

void EngineServer::Stop() {
  impl_->stopping = true;
  impl_->io.stop();
}

Status EngineServer::Run(
    const std::function<void(const std::string& url, const std::string& isolation)>& on_ready) {
  // --max-memory 0: the machine's memory (a container's cgroup limit, when lower).
  if (impl_->config.max_memory_mb <= 0) {
    int machine = sandbox::MachineMemoryMb();
    impl_->config.max_memory_mb = machine >= kMinMemoryMb ? machine : 10240;
    if (machine < kMinMemoryMb) {
      spdlog::warn("cannot read the machine's memory: --max-memory is Lambda's 10240 MB");
    }
  }
  const EngineConfig& cfg = impl_->config;
  spdlog::info(
      "ceilings: a function's or map task's timeout up to {} s (--max-timeout), its "
      "memory up to {} MB (--max-memory)",
      cfg.max_timeout_s, cfg.max_memory_mb);
  auto& io = impl_->io;
  const std::string& dir = cfg.state_dir;
  const bool auth = !cfg.access_key_id.empty();
  if (auth && cfg.secret_access_key.empty()) {
    return Status::InvalidArgument("an access key was given without its secret key");
  }
  if (!auth && !cfg.insecure_no_auth && !IsLoopbackHost(cfg.host)) {
    return Status::InvalidArgument(
        "refusing to serve " + cfg.host +
        " without credentials: anyone who reaches it could deploy and run code. Create some "
        "with `gust auth init` (or pass --access-key/--secret-key), or bind to 127.0.0.1; "
        "--insecure-no-auth serves it unauthenticated anyway");
  }
  if (!auth && !IsLoopbackHost(cfg.host)) {
    spdlog::warn(
        "--insecure-no-auth: serving {} without credentials: anyone who can reach it can deploy "
        "and run code",
        cfg.host);
  }
  // One check, before routing: every API request is signed; web apps are
  // checked by the gateway, and only when they ask for it.
  std::optional<http::sigv4::Verifier> verifier;
  if (auth)
    verifier.emplace(
        std::vector{http::sigv4::Credentials{cfg.access_key_id, cfg.secret_access_key}});
  GUST_RETURN_IF_ERROR(MakeDir(dir, 0700));
  for (const char* sub : {"/blobs", "/bundles", "/logs", "/sandbox"}) {
    GUST_RETURN_IF_ERROR(MakeDir(dir + sub, sub == std::string("/bundles") ? 0755 : 0700));
  }
  // The sandbox channel's directory, bound into sandboxes at /run/gust: the
  // sandbox uid must reach the socket in it (ChannelApi checks who connects).
  const std::string channel_dir = dir + "/channel";
  GUST_RETURN_IF_ERROR(MakeDir(channel_dir, 0755));
  // Sandboxes read bundles as an unprivileged uid through a bind mount: the
  // path down to them must be searchable.
  ::chmod(dir.c_str(), 0711);

  BundleCache bundles(dir + "/bundles");
  engine::LogSink logs(dir + "/logs");

  http::Router router;
  Gateway* gateway = nullptr;  // set before io.run(): nothing is served until then
  S3Api* s3 = nullptr;         // likewise
  // Cluster mode: checks the signature of a request marked forwarded by another node
  // (forwarder.h), and of every engine-to-engine route (/v1/cluster/..., which take the
  // cluster's key and no other), against the cluster's credential. Set before io.run().
  std::optional<http::sigv4::Verifier> cluster_verifier;
  http::ServerOptions server_options;
  server_options.host = cfg.host;
  server_options.port = cfg.port;
  server_options.max_body_bytes = 100ull << 20;
  server_options.idle_timeout_s = cfg.http_idle_timeout_s;
  server_options.tls_cert_file = cfg.tls_cert_file;
  server_options.tls_key_file = cfg.tls_key_file;
  http::Server server(
      io, server_options,
      [&router, &gateway, &s3, &verifier, &cluster_verifier](http::Request&& req,
                                                             http::Responder r) {
        if (s3 != nullptr && S3Api::Accepts(req)) {
          s3->Handle(std::move(req), std::move(r));  // verifies S3's way itself
          return;
        }
        // Only another node, with the cluster's key, may mark a request forwarded: the
        // mark makes a node run the call itself and skips the client's own credential.
        bool forwarded = false;
        if (cluster_verifier && Forwarder::IsForwarded(req)) {
          if (auto refusal = cluster_verifier->Verify(req, kApiServices)) {
            refusal->message = std::string(kForwardedHeader) +
                               " is accepted only on a request signed with the cluster's "
                               "credential: " +
                               refusal->message;
            r.Send(Refuse(*refusal));
            return;
          }
          forwarded = true;
        }
        if (gateway != nullptr && gateway->Accepts(req)) {
          gateway->Handle(std::move(req), std::move(r));
          return;
        }
        req.erase(kAncestorsHeader);  // the sandbox channel's alone (channel_api.h)
        req.erase(kGrantsHeader);
        if (cluster_verifier && !forwarded && req.target().starts_with("/v1/cluster/")) {
          if (auto refusal = cluster_verifier->Verify(req, kApiServices)) {
            r.Send(Refuse(*refusal));
            return;
          }
        } else if (verifier && !forwarded) {
          if (auto refusal = verifier->Verify(req, kApiServices)) {
            r.Send(Refuse(*refusal));
            return;
          }
        }
        router.Route(std::move(req), r);
      },
      RefusedBeforeRouting);
  // Bound before anything else claims per-port resources (the cgroup parent
  // gust-<port>, whose leftovers the launcher kills): a second engine on a
  // busy port must fail here, not take the running engine's sandboxes down.
  // Nothing is served before io.run(), when every route is registered.
  GUST_RETURN_IF_ERROR(server.Start());
  // The sandbox channel (channel_api.h): map tasks reach the job API here,
  // identified by their pid, with no network and no key. Bound now, like the
  // port, and served once the routes exist.
  ChannelApi* channel = nullptr;
  sandbox::UniqueFd channel_fd(::open(channel_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  http::ServerOptions channel_options = server_options;
  channel_options.tls_cert_file.clear();
  channel_options.tls_key_file.clear();
  channel_options.unix_path = ChannelSocketPath(channel_dir, channel_fd.get());
  channel_options.unix_mode = 0666;
  http::Server channel_server(
      io, channel_options,
      [&channel](http::Request&& req, http::Responder r) {
        if (channel != nullptr) channel->Handle(std::move(req), std::move(r));
      },
      RefusedBeforeRouting);
  GUST_RETURN_IF_ERROR(channel_server.Start());
  // Opened once the ports are ours: a second engine started on a busy port must not have
  // joined the cluster in the running one's name first.
  const bool cluster = !cfg.cluster_conninfo.empty();
  GUST_ASSIGN_OR_RETURN(Stores stores,
                        cluster ? OpenClusterStores(cfg, kVersion) : OpenEmbeddedStores(cfg));
  auto& store = stores.metadata;
  auto& blobs = stores.blobs;
  auto& event_queue = stores.events;
  auto& schedules = stores.schedules;

  sandbox::LauncherOptions launcher_options;
  launcher_options.init_binary = cfg.init_binary;
  launcher_options.zygote_module = cfg.zygote_module;
  launcher_options.runtime_dir = cfg.runtime_dir;
  launcher_options.bundles_root = bundles.root();
  launcher_options.work_dir = dir + "/sandbox";
  launcher_options.channel_dir = channel_dir;
  launcher_options.client_dir = cfg.client_dir;
  launcher_options.preload_modules = cfg.preload_modules;
  launcher_options.python = cfg.python;
  launcher_options.trusted_python_owners = cfg.trusted_python_owners;
  launcher_options.python_env_preload = cfg.python_env_preload;
  launcher_options.prefork = cfg.prefork;
  launcher_options.prefork_max = cfg.prefork_max;
  launcher_options.guard_host_services = !cfg.network_host_access;
  if (cluster) launcher_options.node_name = cfg.node_name;
  if (auto memory = engine::ReadHostMemory()) {
    launcher_options.prefork_max =
        sandbox::PoolSizer::MaxForMemory(cfg.prefork, cfg.prefork_max, memory->available);
    if (launcher_options.prefork_max < cfg.prefork_max) {
      spdlog::info(
          "zygote pool: grows to at most {} children after bursts (--prefork-max {}; "
          "an eighth of the {} MB of free memory)",
          launcher_options.prefork_max, cfg.prefork_max, memory->available >> 20);
    }
  }
  launcher_options.isolation = cfg.isolation == "full"       ? sandbox::Isolation::kFull
                               : cfg.isolation == "rootless" ? sandbox::Isolation::kRootless
                                                             : sandbox::Isolation::kAuto;
  // Debug knob: each sandbox writes its isolation steps' costs into its init log.
  launcher_options.trace_isolation_steps = std::getenv("GUST_TRACE_ISOLATION") != nullptr;
  // One parent cgroup per engine: several engines (tests, users) may share a
  // machine, and each removes its own parent at shutdown. Keyed by port (two
  // engines cannot share one), so a restart finds and cleans what a crashed
  // predecessor left.
  launcher_options.cgroup_parent =
      "gust-" + (cfg.port ? std::to_string(cfg.port) : "pid" + std::to_string(::getpid()));
  auto launcher = sandbox::MakeZygoteLauncher(io, launcher_options);
  GUST_RETURN_IF_ERROR(launcher->Start());

  engine::Invoker invoker(io, cfg, *store, *blobs, bundles, *launcher, logs);
  invoker.Start();
  // Cluster mode: the other nodes' heartbeats as last read, and where calls go that find no
  // idle sandbox here (docs/CLUSTER.md, "Step 3 as built").
  engine::ClusterView cluster_view;
  const PeerLink peer_link{stores.cluster_key, {cfg.cluster_ca_file}};
  std::optional<Forwarder> forwarder;
  if (cluster) {
    cluster_verifier.emplace(std::vector{stores.cluster_key});
    forwarder.emplace(io, invoker, cluster_view, cfg.node_name, peer_link,
                      std::chrono::seconds(cfg.max_timeout_s + 60),
                      std::chrono::milliseconds(cfg.cluster_lease_ms));
  }

  boost::asio::thread_pool workers(2);
  const std::string scheme = cfg.tls_cert_file.empty() ? "http://" : "https://";
  std::string url = scheme + cfg.host + ":" + std::to_string(cfg.port);

  engine::AsyncInvoker async(io, cfg, invoker, *event_queue, *store);
  // Membership gates leasing from the first page-in; its heartbeats start below.
  std::optional<engine::ClusterNode> cluster_node;
  if (cluster) {
    const std::chrono::milliseconds lease(cfg.cluster_lease_ms);
    cluster_node.emplace(*stores.nodes, *event_queue, stores.self, lease / 5, lease);
    async.UseClusterLeases([&cluster_node] { return cluster_node->Live(); });
  }
  GUST_RETURN_IF_ERROR(async.Start());
  // Cluster mode: changes to functions made through other nodes reach this node's caches
  // (docs/CLUSTER.md, "Function changes across nodes").
  std::optional<engine::FunctionFeed> function_feed;
  if (cluster) {
    GUST_ASSIGN_OR_RETURN(auto changes, OpenPgFunctionChangeFeed(cfg.cluster_conninfo));
    function_feed.emplace(
        std::move(changes),
        [&io, &invoker, &async](std::vector<FunctionChange> batch) {
          boost::asio::post(io, [&invoker, &async, batch = std::move(batch)] {
            engine::ApplyFunctionChanges(batch, invoker, async);
          });
        },
        [&io, &invoker, &async] {
          boost::asio::post(io,
                            [&invoker, &async] { engine::DropCachedFunctions(invoker, async); });
        });
    GUST_RETURN_IF_ERROR(function_feed->Start());
  }
  schedule::Scheduler scheduler(io, workers, *schedules, invoker, async);
  GUST_RETURN_IF_ERROR(scheduler.Start());

  if (cfg.port == 0) url = scheme + cfg.host + ":" + std::to_string(server.port());

  EngineInfo info;
  info.version = kVersion;
  info.state_dir = dir;
  info.url = url;
  info.isolation = launcher->IsolationSummary();
  info.pid = static_cast<int>(::getpid());
  info.started_ms = NowEpochMs();
  GatewayOptions gateway_options;
  gateway_options.authorize =
      [&verifier](const http::Request& req) -> std::optional<http::Response> {
    if (!verifier) {
      return ErrorResponse(
          {403, "AccessDeniedException",
           "this app requires signed requests (\"authorization\": \"sigv4\") but the engine has "
           "no credentials to check them with: start it with `gust auth init` or "
           "--access-key/--secret-key"});
    }
    if (auto refusal = verifier->Verify(req, kWebServices)) return Refuse(*refusal);
    return std::nullopt;
  };
  if (forwarder) gateway_options.forwarder = &*forwarder;
  Gateway app_gateway(io, invoker, logs, gateway_options);
  gateway = &app_gateway;
  engine::MapJobs map_jobs(io, invoker);
  engine::MapFunctions map_functions(io, workers, *store, *blobs, bundles, invoker, map_jobs,
                                     cfg.job_ttl_s);
  map_functions.Start();
  // Cluster mode: map jobs outlive their owner (docs/CLUSTER.md, "Step 5b as built").
  std::optional<engine::MapJournal> map_journal;
  std::optional<engine::MapTakeover> map_takeover;
  if (cluster) {
    if (cfg.map_durability) {
      map_journal.emplace(io, *stores.map_journal, cfg.node_name, stores.epoch,
                          std::chrono::milliseconds(cfg.map_store_interval_ms));
      map_jobs.UseJournal(&*map_journal);
    }
    // Jobs of nodes that record them are read and taken over here either way.
    map_takeover.emplace(io, map_jobs, *stores.map_reads, *stores.nodes, cluster_view,
                         cfg.node_name, stores.epoch);
  }

  std::optional<ClusterLogs> cluster_logs;
  if (cluster) {
    cluster_logs.emplace(workers, cluster_view, *stores.nodes, cfg.node_name, peer_link,
                         logs.dir());
  }
  const ApiContext api{.io = io,
                       .workers = workers,
                       .config = cfg,
                       .info = info,
                       .store = *store,
                       .blobs = *blobs,
                       .bundles = bundles,
                       .event_queue = *event_queue,
                       .schedules = *schedules,
                       .logs = logs,
                       .invoker = invoker,
                       .async = async,
                       .map_jobs = map_jobs,
                       .map_functions = map_functions,
                       .scheduler = scheduler,
                       .forwarder = forwarder ? &*forwarder : nullptr,
                       .map_journal = map_journal ? &*map_journal : nullptr,
                       .map_takeover = map_takeover ? &*map_takeover : nullptr,
                       .cluster_logs = cluster_logs ? &*cluster_logs : nullptr};
  LambdaApi lambda_api(api);
  lambda_api.Register(router);
  GustApi gust_api(api);
  gust_api.Register(router);
  JobsApi jobs_api(api);
  jobs_api.Register(router);
  EventsApi events_api(api);
  events_api.Register(router);
  SchedulesApi schedules_api(api);
  schedules_api.Register(router);
  // The object API (docs/STORAGE.md): this node's files, in both modes for now
  // (docs/CLUSTER.md "Objects").
  GUST_ASSIGN_OR_RETURN(std::unique_ptr<ObjectStore> objects,
                        OpenFileObjectStore(dir + "/objects"));
  S3Api s3_api(*objects, verifier ? &*verifier : nullptr);
  s3 = &s3_api;
  ChannelApi channel_api(api, jobs_api, s3_api);
  channel = &channel_api;
  std::optional<ClusterApi> cluster_api;
  std::optional<ClusterMaps> cluster_maps;
  auto activity = [&invoker, &async, &map_jobs, &cluster_maps] {
    Activity a;
    a.invocations = invoker.InFlight();
    a.async_events = async.stats().running;
    a.map_jobs = map_jobs.ActiveFunctions().size();
    a.map_shares = cluster_maps ? cluster_maps->Sessions() : 0;
    return a;
  };
  // `gust node drain` (docs/CLUSTER.md, "Step 6 as built"): once this node reads itself
  // draining, it takes no new work, and leaves (the orderly stop below, exit 0) when nothing
  // runs any more and the other nodes have had a beat to read the drain.
  boost::asio::steady_timer drain_timer(io);
  MonoTime drain_started;
  std::string drain_left;  // the last activity logged
  std::function<void()> drain_poll = [&] {
    Activity a = activity();
    if (a.Idle() && MonoClock::now() - drain_started >= kDrainSettle) {
      spdlog::info("cluster: node {} drained: nothing runs here any more; leaving", cfg.node_name);
      Stop();
      return;
    }
    if (std::string now = a.Json(); now != drain_left) {
      spdlog::info("cluster: draining, still running here: {}", now);
      drain_left = std::move(now);
    }
    drain_timer.expires_after(kDrainPoll);
    drain_timer.async_wait([&drain_poll](const boost::system::error_code& ec) {
      if (!ec) drain_poll();
    });
  };
  if (!cluster) ClusterApi::RegisterEmbedded(router);
  if (cluster) {
    cluster_api.emplace(workers, *stores.nodes, cfg.node_name);
    cluster_api->Register(router);
    cluster_logs->Register(router);
    cluster_maps.emplace(io, invoker, map_jobs, cluster_view, cfg.node_name, cfg.advertise_url,
                         stores.epoch, peer_link);
    cluster_maps->UseMembership([&cluster_node] { return cluster_node->Live(); });
    cluster_maps->Register(router);
    cluster_maps->Start();
    // The invoker's counts are the engine thread's: each beat asks it there, and goes on
    // without them (publishing the last ones) if it does not answer within a second.
    cluster_node->Publish(
        [&io, &invoker, &activity](NodeInfo& info) {
          auto measured = std::make_shared<std::promise<NodeInfo>>();
          auto got = measured->get_future();
          boost::asio::post(io, [&invoker, &activity, measured] {
            NodeInfo counts;
            engine::MeasureSandboxes(invoker, counts);
            counts.activity = activity().Json();
            measured->set_value(std::move(counts));
          });
          if (got.wait_for(std::chrono::seconds(1)) != std::future_status::ready) return;
          NodeInfo counts = got.get();
          info.warm = std::move(counts.warm);
          info.free_slots = counts.free_slots;
          info.activity = std::move(counts.activity);
        },
        &cluster_view);
    cluster_node->OnDrain([&] {
      boost::asio::post(io, [&] {
        if (impl_->stopping) return;
        async.Drain();
        cluster_maps->Drain();
        drain_started = MonoClock::now();
        drain_poll();
      });
    });
    // After a lapse the node is the next epoch (ClusterNode::OnRejoin); the event queue is
    // switched by ClusterNode itself.
    cluster_node->OnRejoin([&](int64_t epoch) {
      if (map_journal) map_journal->SetEpoch(epoch);
      map_takeover->SetEpoch(epoch);
      cluster_maps->SetEpoch(epoch);
    });
    // Before serving: a node just started forwards (a job's status, calls) like any other.
    if (Status read = cluster_node->ReadPeers(); !read.ok()) {
      spdlog::warn("cluster: reading the membership at start: {} (read at the first beat)",
                   read.ToString());
    }
    cluster_node->Start();
    map_takeover->Start();
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    Stop();
  });

  if (on_ready) on_ready(url, info.isolation);
  // The engine thread's backstop (docs/STYLE.md): an exception escaping a
  // completion handler is a bug, but it must cost the one operation it hit,
  // not every function on the engine. io_context::run() may be re-entered
  // after a handler threw; it returns normally only once stopped.
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error(
          "BUG: an exception escaped a handler on the engine thread "
          "(docs/STYLE.md): {}",
          e.what());
    } catch (...) {
      spdlog::error("BUG: a non-std exception escaped a handler on the engine thread");
    }
  }

  // Orderly shutdown: stop taking requests, kill sandboxes, flush what is queued.
  drain_timer.cancel();
  server.Stop();
  channel_server.Stop();
  if (forwarder) forwarder->Shutdown();
  map_functions.Stop();
  scheduler.Shutdown();
  async.Shutdown();
  if (function_feed) function_feed->Stop();
  if (cluster_maps) cluster_maps->Shutdown();
  if (map_takeover) map_takeover->Shutdown();
  if (cluster) {
    // Events this node leased and did not finish are the other nodes' now, not after the
    // lease runs out; then the row reads "stopped".
    Status released = event_queue->ReleaseAll();
    if (!released.ok()) spdlog::warn("cluster: releasing leases: {}", released.ToString());
    cluster_node->Stop();
  }
  map_jobs.Shutdown();
  if (map_journal) map_journal->Shutdown();  // the appends in flight end
  invoker.Shutdown();
  launcher->Shutdown();
  io.restart();
  io.run_for(std::chrono::milliseconds(200));  // let exit reports and writes settle
  workers.join();
  logs.Flush();
  invoker.FlushRecords();
  return Status::Ok();
}

}  // namespace gust::api

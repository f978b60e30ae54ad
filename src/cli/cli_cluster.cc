// `gust cluster init CONNINFO` (the schema and the cluster's credential in a PostgreSQL
// database), `gust cluster status [--json]` (the nodes, as the engine at --url reads them) and
// `gust node drain NAME` (docs/CLUSTER.md, "Step 6 as built").
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "common/json_read.h"
#include "http/router.h"
#include "store/node_store.h"

namespace gust::cli {
namespace {

Status ClusterInit(const std::string& conninfo) {
  GUST_ASSIGN_OR_RETURN(http::sigv4::Credentials fresh, NewCredentials());
  GUST_ASSIGN_OR_RETURN(ClusterInitResult r,
                        InitPgCluster(conninfo, fresh.access_key_id, fresh.secret_access_key));
  if (r.schema_from == r.schema_to) {
    std::printf("schema: version %d, current (nothing to apply)\n", r.schema_to);
  } else {
    std::printf("schema: version %d (was %d)\n", r.schema_to, r.schema_from);
  }
  std::printf("cluster credential: %s (%s; nodes sign requests to each other with it)\n",
              r.access_key_id.c_str(), r.created_credential ? "created" : "kept");
  // A password given on the command line is not printed back (terminals and logs keep it).
  std::string shown = r.conninfo_has_password ? "'<the connection string>'" : "'" + conninfo + "'";
  std::printf(
      "next, on every server:\n"
      "  gust up --cluster %s --node-name NAME --advertise http://ADDRESS:PORT\n"
      "then `gust cluster status` lists the nodes.\n",
      shown.c_str());
  if (r.conninfo_has_password) {
    std::printf("(keep the password in ~/.pgpass or PGPASSWORD rather than in command lines)\n");
  }
  return Status::Ok();
}

std::string Age(int64_t ms) {
  char buf[32];
  if (ms < 0) ms = 0;
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs ago", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "m ago", ms / 60'000);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRId64 "h ago", ms / 3'600'000);
  }
  return buf;
}

Status ClusterStatus(ApiClient& api, bool as_json) {
  auto doc = api.CallJson(http::beast_http::verb::get, "/v1/nodes");
  if (!doc.ok() && doc.status().code() == Code::kNotFound) {
    return Status::NotFound("the engine at " + api.url() +
                            " is not part of a cluster (it was not started with `gust up "
                            "--cluster`)");
  }
  GUST_RETURN_IF_ERROR(doc.status());
  if (as_json) {
    std::printf("%s\n", doc->dump(2).c_str());
    return Status::Ok();
  }
  const nlohmann::json* nodes = JsonFind(*doc, "nodes");
  if (nodes == nullptr || !nodes->is_array()) {
    return Status::Internal("the engine's /v1/nodes has no \"nodes\" list");
  }
  std::printf("%-16s %-9s %5s  %-28s %5s %6s  %-17s %5s  %-12s %s\n", "NODE", "STATE", "EPOCH",
              "ADDRESS", "CORES", "LOAD", "MEMORY FREE/TOTAL", "WARM", "HEARTBEAT", "VERSION");
  for (const nlohmann::json& n : *nodes) {
    if (!n.is_object()) continue;
    char memory[40];
    std::snprintf(memory, sizeof memory, "%.1f/%.1f GiB",
                  static_cast<double>(JsonIntOr(n, "memory_free_mb", 0)) / 1024.0,
                  static_cast<double>(JsonIntOr(n, "memory_mb", 0)) / 1024.0);
    double load = 0;
    if (const nlohmann::json* l = JsonFind(n, "load1"); l != nullptr && l->is_number()) {
      load = l->get<double>();
    }
    // Idle sandboxes over every function version ({function: {version: count}}).
    int64_t warm = 0;
    if (const nlohmann::json* w = JsonFind(n, "warm"); w != nullptr && w->is_object()) {
      for (const auto& [function, versions] : w->items()) {
        if (!versions.is_object()) continue;
        for (const auto& [version, count] : versions.items()) {
          if (count.is_number_integer()) warm += count.get<int64_t>();
        }
      }
    }
    std::string name = JsonStringOr(n, "name", "?");
    if (name == JsonStringOr(*doc, "node", "")) name += " *";
    std::printf("%-16s %-9s %5" PRId64 "  %-28s %5" PRId64 " %6.2f  %-17s %5" PRId64 "  %-12s %s\n",
                name.c_str(), JsonStringOr(n, "state", "?").c_str(), JsonIntOr(n, "epoch", 0),
                JsonStringOr(n, "advertise", "?").c_str(), JsonIntOr(n, "cores", 0), load, memory,
                warm, Age(JsonIntOr(n, "heartbeat_age_ms", 0)).c_str(),
                JsonStringOr(n, "version", "?").c_str());
  }
  std::printf("(* the node that answered)\n");
  return Status::Ok();
}

// "2 invocations, 1 async event, 0 map jobs, 3 map shares" from a node's published activity.
std::string DescribeActivity(const nlohmann::json& node) {
  const nlohmann::json* a = JsonFind(node, "activity");
  if (a == nullptr || !a->is_object() || a->empty()) return "not published yet";
  std::string out;
  for (const auto& [key, label] :
       {std::pair{"invocations", "invocations"}, std::pair{"async_events", "async events"},
        std::pair{"map_jobs", "map jobs it owns"},
        std::pair{"map_shares", "map sessions of other nodes' jobs"}}) {
    if (!out.empty()) out += ", ";
    out += std::to_string(JsonIntOr(*a, key, 0)) + " " + label;
  }
  return out;
}

const nlohmann::json* FindNode(const nlohmann::json& doc, const std::string& name) {
  const nlohmann::json* nodes = JsonFind(doc, "nodes");
  if (nodes == nullptr || !nodes->is_array()) return nullptr;
  for (const nlohmann::json& n : *nodes) {
    if (n.is_object() && JsonStringOr(n, "name", "") == name) return &n;
  }
  return nullptr;
}

Status NodeDrain(ApiClient& api, const std::string& name, bool wait, int timeout_s) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  GUST_ASSIGN_OR_RETURN(nlohmann::json doc,
                        api.CallJson(http::beast_http::verb::post,
                                     "/v1/nodes/" + http::PercentEncode(name) + "/drain"));
  const std::string asked = JsonStringOr(doc, "node", "?");
  std::printf(
      "node %s is draining (recorded through node %s): it takes no new work, finishes "
      "what runs, then leaves\n",
      name.c_str(), asked.c_str());
  if (!wait) return Status::Ok();
  std::string last;
  for (;;) {
    auto nodes = api.CallJson(http::beast_http::verb::get, "/v1/nodes");
    if (!nodes.ok() && nodes.status().code() == Code::kUnavailable && asked == name) {
      // The node answering was the drained one: it leaves by stopping its server.
      std::printf(
          "node %s stopped answering at %s, as a drained node does when it leaves "
          "(`gust cluster status` through another node shows it stopped)\n",
          name.c_str(), api.url().c_str());
      return Status::Ok();
    }
    GUST_RETURN_IF_ERROR(nodes.status());
    const nlohmann::json* node = FindNode(*nodes, name);
    if (node == nullptr) return Status::NotFound("node " + name + " is no longer listed");
    const std::string state = JsonStringOr(*node, "state", "?");
    const std::string running = DescribeActivity(*node);
    if (state == "stopped") {
      std::printf("node %s drained and left (stopped)\n", name.c_str());
      return Status::Ok();
    }
    if (state == "dead") {
      return Status::Unavailable("node " + name +
                                 " died while draining (no heartbeat within its lease); "
                                 "last published as running: " +
                                 running + ". Its async events run elsewhere after their lease");
    }
    if (Clock::now() >= deadline) {
      return Status::Timeout("node " + name + " is still " + state + " after " +
                             std::to_string(timeout_s) + " s; still running there: " + running +
                             " (the drain goes on; `gust node drain " + name +
                             "` again waits again)");
    }
    if (running != last) {
      std::printf("%s: %s; still running: %s\n", name.c_str(), state.c_str(), running.c_str());
      std::fflush(stdout);
      last = running;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

void AddClusterCommands(CLI::App& app, std::shared_ptr<CliState> state) {
  auto* cluster = app.add_subcommand(
      "cluster", "Cluster mode: one gust over several servers on a PostgreSQL database");
  cluster->require_subcommand(1);

  auto conninfo = std::make_shared<std::string>();
  auto* init = cluster->add_subcommand(
      "init",
      "Prepare a PostgreSQL database for a cluster: apply gust's schema (or upgrade it) and "
      "create the cluster's credential; prints what to run on every server. Safe to run again");
  init->add_option("CONNINFO", *conninfo,
                   "libpq connection string, a URI (postgresql://USER@HOST[,HOST2]/DB) or "
                   "key=value pairs; keep a password in ~/.pgpass or PGPASSWORD")
      ->required();
  init->callback([conninfo, state] {
    Status st = ClusterInit(*conninfo);
    if (!st.ok()) state->exit_code = Fail(st.message());
  });

  auto as_json = std::make_shared<bool>(false);
  auto* status = cluster->add_subcommand(
      "status",
      "List the cluster's nodes as the engine at --url sees them: state (up, draining, "
      "stopped, dead: no heartbeat within its 10 s lease), epoch, address, cores, load, "
      "memory, warm (idle) sandboxes, last heartbeat, version");
  status->add_flag("--json", *as_json, "Print the engine's answer as JSON");
  status->callback(
      WithClient(state, [as_json](ApiClient& api) { return ClusterStatus(api, *as_json); }));

  struct DrainOptions {
    std::string name;
    bool wait = true;
    int timeout_s = 600;
  };
  auto drain_options = std::make_shared<DrainOptions>();
  auto* node = app.add_subcommand("node", "Cluster mode: operations on one node");
  node->require_subcommand(1);
  auto* drain = node->add_subcommand(
      "drain",
      "Take a node out of the cluster in order: it takes no new work, finishes what runs, "
      "then leaves (its row reads stopped and its `gust up` exits 0). Any node accepts the "
      "request (--url)");
  drain->footer(
      "While a node drains:\n"
      "  sync calls     other nodes stop forwarding to it (it reads 'draining' in their\n"
      "                 membership copy within a heartbeat, 2 s); a call that reaches it\n"
      "                 directly is forwarded to an up node, and runs here only if no node\n"
      "                 is up (a drain never drops a call); calls already running finish\n"
      "  async events   it leases no new ones and gives back at once those leased but not\n"
      "                 started; running ones finish and record their outcomes; events\n"
      "                 accepted through it are queued for the other nodes\n"
      "  maps           it refuses new offers (shares of other nodes' jobs); its sessions\n"
      "                 finish the chunk they hold and take no more; jobs it owns keep running\n"
      "                 (offered to the up nodes) and it leaves once they are done; a new job\n"
      "                 submitted to it is forwarded to an up node, which owns it (accepted\n"
      "                 here only if no node is up)\n"
      "  warm sandboxes are not used for new calls and end when it leaves\n"
      "It leaves 3 s after nothing runs any more. `gust up` on it again joins as up.\n"
      "Exit status: 0 once it is stopped (or at once with --no-wait); non-zero naming what\n"
      "still runs when --timeout passes or if it dies while draining; 404 for a node the\n"
      "cluster does not have, 409 for one stopped or dead, or for an engine without --cluster.");
  drain->add_option("NAME", drain_options->name, "The node's name (`gust cluster status`)")
      ->required();
  drain->add_flag("--wait,!--no-wait", drain_options->wait,
                  "Wait for the node to leave, printing what still runs (default), or return "
                  "once the drain is recorded");
  drain
      ->add_option("--timeout", drain_options->timeout_s,
                   "Seconds to wait before giving up (the drain itself goes on)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  drain->callback(WithClient(state, [drain_options](ApiClient& api) {
    return NodeDrain(api, drain_options->name, drain_options->wait, drain_options->timeout_s);
  }));
}

}  // namespace gust::cli

// `gust cluster init CONNINFO` (the schema and the cluster's credential in a PostgreSQL
// database) and `gust cluster status [--json]` (the nodes, as the engine at --url reads them);
// docs/CLUSTER.md.
#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "common/json_read.h"
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
}

}  // namespace gust::cli

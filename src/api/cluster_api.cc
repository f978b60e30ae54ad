#include "api/cluster_api.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "api/lambda_shapes.h"
#include "api/run_guarded.h"
#include "common/json_read.h"

namespace gust::api {

ClusterApi::ClusterApi(boost::asio::thread_pool& workers, NodeStore& nodes, std::string node_name)
    : workers_(workers), nodes_(nodes), node_name_(std::move(node_name)) {}

namespace {

// Published by the node itself (outside input to this one): anything but an object reads
// as an empty one.
nlohmann::json ObjectOrEmpty(const std::string& text) {
  nlohmann::json doc = JsonParse(text);
  return doc.is_object() ? doc : nlohmann::json::object();
}

nlohmann::json NodeJson(const NodeRow& row) {
  return {{"name", row.info.name},
          {"advertise", row.info.advertise_url},
          {"state", row.state},
          {"epoch", row.epoch},
          {"version", row.info.version},
          {"cores", row.info.cores},
          {"memory_mb", row.info.memory_mb},
          {"memory_free_mb", row.info.memory_free_mb},
          {"load1", row.info.load1},
          {"started_ms", row.started_ms},
          {"heartbeat_ms", row.heartbeat_ms},
          {"heartbeat_age_ms", row.heartbeat_age_ms},
          {"deadline_in_ms", row.deadline_in_ms},
          {"warm", ObjectOrEmpty(row.info.warm)},
          {"free_slots", row.info.free_slots},
          {"activity", ObjectOrEmpty(row.info.activity)}};
}

}  // namespace

void ClusterApi::Register(http::Router& router) {
  router.Add(http::beast_http::verb::get, "/v1/nodes",
             OnWorkers(workers_, this, &ClusterApi::Nodes));
  router.Add(http::beast_http::verb::post, "/v1/nodes/{name}/drain",
             OnWorkers(workers_, this, &ClusterApi::Drain));
}

void ClusterApi::RegisterEmbedded(http::Router& router) {
  router.Add(http::beast_http::verb::post, "/v1/nodes/{name}/drain",
             [](http::Request&&, const http::RouteMatch&, http::Responder r) {
               r.Send(ErrorResponse(
                   {409, "ResourceConflictException",
                    "this engine is not part of a cluster (it was not started with `gust up "
                    "--cluster`): there are no nodes to drain; `gust down` stops it"}));
             });
}

http::Response ClusterApi::Nodes(const http::Request& /*req*/, const http::RouteMatch& /*m*/) {
  auto rows = nodes_.List();
  if (!rows.ok()) return ErrorResponse(FromStatus(rows.status()));
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodeRow& row : *rows) nodes.push_back(NodeJson(row));
  return JsonResponse(200, {{"node", node_name_}, {"epoch", nodes_.epoch()}, {"nodes", nodes}});
}

http::Response ClusterApi::Drain(const http::Request& /*req*/, const http::RouteMatch& m) {
  auto row = nodes_.Drain(m.params.at("name"));
  if (!row.ok()) return ErrorResponse(FromStatus(row.status()));
  spdlog::info("cluster: node {} drains (asked through node {})", row->info.name, node_name_);
  return JsonResponse(200, {{"node", node_name_}, {"drained", NodeJson(*row)}});
}

}  // namespace gust::api

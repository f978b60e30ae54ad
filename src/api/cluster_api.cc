#include "api/cluster_api.h"

#include <nlohmann/json.hpp>

#include "api/lambda_shapes.h"
#include "api/run_guarded.h"
#include "common/json_read.h"

namespace gust::api {

ClusterApi::ClusterApi(boost::asio::thread_pool& workers, NodeStore& nodes, std::string node_name)
    : workers_(workers), nodes_(nodes), node_name_(std::move(node_name)) {}

void ClusterApi::Register(http::Router& router) {
  router.Add(http::beast_http::verb::get, "/v1/nodes",
             OnWorkers(workers_, this, &ClusterApi::Nodes));
}

http::Response ClusterApi::Nodes(const http::Request& /*req*/, const http::RouteMatch& /*m*/) {
  auto rows = nodes_.List();
  if (!rows.ok()) return ErrorResponse(FromStatus(rows.status()));
  nlohmann::json nodes = nlohmann::json::array();
  for (const NodeRow& row : *rows) {
    // Published by the node itself; anything but an object reads as no warm sandboxes.
    nlohmann::json warm = JsonParse(row.info.warm);
    if (!warm.is_object()) warm = nlohmann::json::object();
    nodes.push_back({{"name", row.info.name},
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
                     {"warm", std::move(warm)},
                     {"free_slots", row.info.free_slots}});
  }
  return JsonResponse(200, {{"node", node_name_}, {"epoch", nodes_.epoch()}, {"nodes", nodes}});
}

}  // namespace gust::api

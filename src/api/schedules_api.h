// SchedulesApi: schedules under /v1 (docs/EVENTS.md).
//
//   PUT    /v1/schedules/{name}      {"function", "qualifier"?, "expression", "timezone"?,
//                                     "enabled"?, "kind"?: "invoke"|"keep_warm", "group"?,
//                                     "payload"?: {...}}
//   GET    /v1/schedules[?group=G]   {"schedules": [...]} with next_fire / last_fire
//   GET    /v1/schedules/{name}
//   DELETE /v1/schedules/{name}      204
//   DELETE /v1/schedules?group=G     {"deleted": N}
//   PUT    /v1/schedule-groups/{group}  {"schedules": [{"name", ...}, ...]}: the group
//                                     becomes exactly these, validated whole first
//
// Bad input is refused before anything changes: an invalid expression (400
// naming the position and reason), an unknown function or qualifier (404), a
// bad kind, name or payload (400).
//
// Thread-safety: validation and the store run on the worker pool; the
// Scheduler is told on the engine thread, which also adds next_fire.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <nlohmann/json.hpp>

#include "api/api_context.h"
#include "api/lambda_shapes.h"
#include "http/router.h"
#include "schedule/scheduler.h"
#include "store/metadata_store.h"
#include "store/schedule_store.h"

namespace gust::api {

class SchedulesApi {
 public:
  explicit SchedulesApi(const ApiContext& ctx);
  void Register(http::Router& router);

 private:
  // Worker pool (validation, the store), each answering through Reply or
  // after telling the Scheduler on the engine thread.
  void Put(const http::Request& req, const http::RouteMatch& m, http::Responder r);
  void List(const http::Request& req, const http::RouteMatch& m, http::Responder r);
  void Get(const http::Request& req, const http::RouteMatch& m, http::Responder r);
  void Delete(const http::Request& req, const http::RouteMatch& m, http::Responder r);
  void DeleteGroup(const http::Request& req, const http::RouteMatch& m, http::Responder r);
  void PutGroup(const http::Request& req, const http::RouteMatch& m, http::Responder r);
  // Builds a schedule from a request document; error.status != 0 when bad.
  ApiError FromJson(const nlohmann::json& doc, const std::string& name, const std::string& group,
                    Schedule* out);
  // Sends the schedules (with next fire times, read on the engine thread).
  void Reply(http::Responder responder, int status, std::vector<Schedule> schedules, bool single);

  boost::asio::io_context& io_;
  boost::asio::thread_pool& workers_;
  MetadataStore& functions_;
  ScheduleStore& store_;
  schedule::Scheduler& scheduler_;
};

}  // namespace gust::api

#include "api/schedules_api.h"

#include <boost/asio/post.hpp>

#include "api/body_parsers.h"
#include "api/request_fields.h"
#include "api/run_guarded.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "schedule/expression.h"
#include "schedule/timezone.h"

namespace gust::api {

namespace {

using beast_verb = http::beast_http::verb;
using Json = nlohmann::json;

Json ScheduleJson(const Schedule& s, std::optional<int64_t> next) {
  Json doc = {{"name", s.name},
              {"group", s.group},
              {"function", s.function},
              {"qualifier", s.qualifier},
              {"expression", s.expression},
              {"timezone", s.timezone.empty() ? std::string("UTC") : s.timezone},
              {"kind", s.kind},
              {"enabled", s.enabled},
              {"payload", s.payload.empty() ? Json(nullptr) : JsonParse(s.payload)},
              {"created_ms", s.created_ms},
              {"last_fire_ms", s.last_fire_ms ? Json(s.last_fire_ms) : Json(nullptr)},
              {"last_fire",
               s.last_fire_ms ? Json(schedule::FormatEventTime(s.last_fire_ms)) : Json(nullptr)},
              {"last_error", s.last_error},
              {"next_fire_ms", next ? Json(*next) : Json(nullptr)},
              {"next_fire", next ? Json(FormatIso8601(*next)) : Json(nullptr)}};
  return doc;
}

}  // namespace

SchedulesApi::SchedulesApi(const ApiContext& ctx)
    : io_(ctx.io),
      workers_(ctx.workers),
      functions_(ctx.store),
      store_(ctx.schedules),
      scheduler_(ctx.scheduler) {}

ApiError SchedulesApi::FromJson(const Json& doc, const std::string& name, const std::string& group,
                                Schedule* out) {
  if (ApiError e = ParseScheduleDoc(doc, name, group, NowEpochMs(), out); e.status) return e;
  auto fn = GetFunctionByQualifier(functions_, out->function, out->qualifier);
  if (!fn.ok()) return FromStatus(fn.status());
  return {0, "", ""};
}

void SchedulesApi::Reply(http::Responder responder, int status, std::vector<Schedule> schedules,
                         bool single) {
  boost::asio::post(io_, [this, responder, status, schedules = std::move(schedules), single] {
    Json list = Json::array();
    for (const Schedule& s : schedules)
      list.push_back(ScheduleJson(s, scheduler_.NextFire(s.name)));
    responder.Send(
        JsonResponse(status, single && !list.empty() ? list[0] : Json{{"schedules", list}}));
  });
}

void SchedulesApi::Register(http::Router& router) {
  router.Add(beast_verb::put, "/v1/schedules/{name}",
             OnWorkers(workers_, this, &SchedulesApi::Put));
  router.Add(beast_verb::get, "/v1/schedules", OnWorkers(workers_, this, &SchedulesApi::List));
  router.Add(beast_verb::get, "/v1/schedules/{name}",
             OnWorkers(workers_, this, &SchedulesApi::Get));
  router.Add(beast_verb::delete_, "/v1/schedules/{name}",
             OnWorkers(workers_, this, &SchedulesApi::Delete));
  router.Add(beast_verb::delete_, "/v1/schedules",
             OnWorkers(workers_, this, &SchedulesApi::DeleteGroup));
  router.Add(beast_verb::put, "/v1/schedule-groups/{group}",
             OnWorkers(workers_, this, &SchedulesApi::PutGroup));
}

void SchedulesApi::Put(const http::Request& req, const http::RouteMatch& m, http::Responder r) {
  const std::string& name = m.params.at("name");
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return r.Send(ErrorResponse(BadJsonError(body.status().message())));
  Schedule s;
  if (ApiError e = FromJson(*body, name, "", &s); e.status) return r.Send(ErrorResponse(e));
  bool existed = store_.Get(name).ok();
  if (Status st = store_.Put(s); !st.ok()) return r.Send(ErrorResponse(FromStatus(st)));
  auto stored = store_.Get(name);
  if (!stored.ok()) return r.Send(ErrorResponse(FromStatus(stored.status())));
  boost::asio::post(io_, [this, copy = *stored] { scheduler_.Upsert(copy); });
  Reply(r, existed ? 200 : 201, {*stored}, true);
}

void SchedulesApi::List(const http::Request&, const http::RouteMatch& m, http::Responder r) {
  std::string group = m.query.count("group") ? m.query.at("group") : "";
  auto list = store_.List(group);
  if (!list.ok()) return r.Send(ErrorResponse(FromStatus(list.status())));
  Reply(r, 200, std::move(list).value(), false);
}

void SchedulesApi::Get(const http::Request&, const http::RouteMatch& m, http::Responder r) {
  auto s = store_.Get(m.params.at("name"));
  if (!s.ok()) return r.Send(ErrorResponse(FromStatus(s.status())));
  Reply(r, 200, {*s}, true);
}

void SchedulesApi::Delete(const http::Request&, const http::RouteMatch& m, http::Responder r) {
  std::string name = m.params.at("name");
  if (Status st = store_.Delete(name); !st.ok()) return r.Send(ErrorResponse(FromStatus(st)));
  boost::asio::post(io_, [this, name, r] {
    scheduler_.Remove(name);
    r.Send(http::MakeResponse(http::beast_http::status::no_content, ""));
  });
}

void SchedulesApi::DeleteGroup(const http::Request&, const http::RouteMatch& m, http::Responder r) {
  auto it = m.query.find("group");
  if (it == m.query.end() || it->second.empty()) {
    return r.Send(ErrorResponse({400, "InvalidParameterValueException",
                                 "DELETE /v1/schedules needs ?group=G (delete one schedule "
                                 "with DELETE /v1/schedules/NAME)"}));
  }
  const std::string& group = it->second;
  auto old = store_.List(group);
  auto n = store_.DeleteGroup(group);
  if (!n.ok()) return r.Send(ErrorResponse(FromStatus(n.status())));
  std::vector<Schedule> gone = old.ok() ? std::move(old).value() : std::vector<Schedule>{};
  boost::asio::post(io_, [this, gone = std::move(gone), count = *n, r] {
    for (const Schedule& s : gone) scheduler_.Remove(s.name);
    r.Send(JsonResponse(200, {{"deleted", count}}));
  });
}

void SchedulesApi::PutGroup(const http::Request& req, const http::RouteMatch& m,
                            http::Responder r) {
  const std::string& group = m.params.at("group");
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return r.Send(ErrorResponse(BadJsonError(body.status().message())));
  auto list = body->find("schedules");
  if (list == body->end() || !list->is_array()) {
    return r.Send(ErrorResponse(BadJsonError("field 'schedules' must be a list")));
  }
  std::vector<Schedule> schedules;
  for (const Json& doc : *list) {
    if (!doc.is_object() || !doc.contains("name") || !doc["name"].is_string()) {
      return r.Send(
          ErrorResponse(BadJsonError("each schedule must be an object with a string 'name'")));
    }
    Schedule s;
    if (ApiError e = FromJson(doc, doc["name"].get<std::string>(), group, &s); e.status) {
      return r.Send(ErrorResponse(e));
    }
    s.group = group;
    for (const Schedule& other : schedules) {
      if (other.name == s.name) {
        return r.Send(ErrorResponse(
            {400, "InvalidParameterValueException", "schedule name " + s.name + " appears twice"}));
      }
    }
    schedules.push_back(std::move(s));
  }
  auto old = store_.List(group);
  if (Status st = store_.ReplaceGroup(group, schedules); !st.ok()) {
    return r.Send(ErrorResponse(FromStatus(st)));
  }
  auto stored = store_.List(group);
  if (!stored.ok()) return r.Send(ErrorResponse(FromStatus(stored.status())));
  std::vector<Schedule> gone = old.ok() ? std::move(old).value() : std::vector<Schedule>{};
  boost::asio::post(io_, [this, gone, now = *stored] {
    for (const Schedule& s : gone) scheduler_.Remove(s.name);
    for (const Schedule& s : now) scheduler_.Upsert(s);
  });
  Reply(r, 200, std::move(stored).value(), false);
}

}  // namespace gust::api

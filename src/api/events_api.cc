#include "api/events_api.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <functional>

#include "api/body_parsers.h"
#include "api/request_fields.h"
#include "api/run_guarded.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "store/arn.h"

namespace gust::api {

namespace {

using beast_verb = http::beast_http::verb;
using Json = nlohmann::json;

ApiError Ok() { return {0, "", ""}; }

std::string QualifierOf(const http::RouteMatch& m, const FunctionRef& ref) {
  if (auto q = m.query.find("Qualifier"); q != m.query.end() && !q->second.empty())
    return q->second;
  return ref.qualifier.empty() ? std::string(kLatest) : ref.qualifier;
}

Json ConfigJson(const EventInvokeConfig& c) {
  Json destinations = Json::object();
  destinations["OnSuccess"] =
      c.on_success.empty() ? Json::object() : Json{{"Destination", c.on_success}};
  destinations["OnFailure"] =
      c.on_failure.empty() ? Json::object() : Json{{"Destination", c.on_failure}};
  Json doc = {{"LastModified", static_cast<double>(c.last_modified_ms) / 1000.0},
              {"FunctionArn", FunctionArn(c.function, c.qualifier)},
              {"DestinationConfig", destinations}};
  if (c.max_retry_attempts) doc["MaximumRetryAttempts"] = *c.max_retry_attempts;
  if (c.max_event_age_s) doc["MaximumEventAgeInSeconds"] = *c.max_event_age_s;
  return doc;
}

// A destination must be a Lambda function ARN naming an existing function.
ApiError CheckDestination(MetadataStore& store, const std::string& arn, const char* which) {
  if (arn.empty()) return Ok();
  std::string name, qualifier;
  if (!ParseFunctionArn(arn, &name, &qualifier)) {
    return {400, "InvalidParameterValueException",
            std::string("The ") + which + " destination '" + arn +
                "' is not a Lambda function ARN (arn:aws:lambda:us-east-1:000000000000:function:"
                "NAME); gust delivers to functions, and keeps failures without a destination in "
                "its dead-letter store (gust dlq NAME)"};
  }
  auto target = GetFunctionByQualifier(store, name, qualifier);
  if (!target.ok()) {
    return {400, "InvalidParameterValueException",
            std::string("The ") + which + " destination " + arn + " does not exist"};
  }
  return Ok();
}

Json RecordJson(const EventRecord& r, const std::optional<std::string>& resident_state) {
  std::string status = resident_state && *resident_state == "running"
                           ? "running"
                           : std::string(EventStatusName(r.status));
  Json doc = {{"RequestId", r.event.id},
              {"FunctionName", r.event.function},
              {"Qualifier", r.event.qualifier.empty() ? std::string(kLatest) : r.event.qualifier},
              {"Status", status},
              {"Attempts", r.event.attempts},
              {"Source", r.event.source},
              {"EnqueuedMs", r.event.enqueued_ms},
              {"Enqueued", FormatIso8601(r.event.enqueued_ms)}};
  if (r.last_attempt_ms) doc["LastAttemptMs"] = r.last_attempt_ms;
  if (r.status == EventStatus::kQueued && r.event.due_ms > r.last_attempt_ms &&
      r.last_attempt_ms > 0) {
    doc["NextAttemptMs"] = r.event.due_ms;
  }
  if (r.finished_ms) doc["FinishedMs"] = r.finished_ms;
  if (!r.condition.empty()) doc["Condition"] = r.condition;
  if (!r.destination.empty()) doc["Destination"] = r.destination;
  if (!r.response.empty()) {
    Json parsed = JsonParse(r.response);
    Json value = parsed.is_discarded() ? Json(r.response) : parsed;
    doc[r.status == EventStatus::kSucceeded ? "Result" : "Error"] = value;
    if (r.response_truncated) doc["ResponseTruncated"] = true;
  }
  return doc;
}

}  // namespace

EventsApi::EventsApi(const ApiContext& ctx)
    : io_(ctx.io),
      workers_(ctx.workers),
      store_(ctx.store),
      queue_(ctx.event_queue),
      async_(ctx.async) {}

void EventsApi::Register(http::Router& router) {
  const std::string path = "/2019-09-25/functions/{name}/event-invoke-config";
  router.Add(beast_verb::put, path, OnWorkers(workers_, this, &EventsApi::PutConfig));
  router.Add(beast_verb::post, path, OnWorkers(workers_, this, &EventsApi::UpdateConfig));
  router.Add(beast_verb::get, path, OnWorkers(workers_, this, &EventsApi::GetConfig));
  router.Add(beast_verb::delete_, path, OnWorkers(workers_, this, &EventsApi::DeleteConfig));
  router.Add(beast_verb::get, path + "/list", OnWorkers(workers_, this, &EventsApi::ListConfigs));
  router.Add(beast_verb::get, "/v1/async-invocations/{id}",
             std::bind_front(&EventsApi::GetInvocation, this));
  router.Add(beast_verb::get, "/v1/functions/{name}/dead-letters",
             OnWorkers(workers_, this, &EventsApi::DeadLetters));
  router.Add(beast_verb::post, "/v1/functions/{name}/dead-letters/redrive",
             std::bind_front(&EventsApi::Redrive, this));
  router.Add(beast_verb::get, "/v1/async", std::bind_front(&EventsApi::Stats, this));
}

http::Response EventsApi::PutConfig(const http::Request& req, const http::RouteMatch& m) {
  return SaveConfig(req, m, true);
}

http::Response EventsApi::UpdateConfig(const http::Request& req, const http::RouteMatch& m) {
  return SaveConfig(req, m, false);
}

http::Response EventsApi::SaveConfig(const http::Request& req, const http::RouteMatch& m,
                                     bool replace) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) return ErrorResponse(FromStatus(ref.status()));
  std::string qualifier = QualifierOf(m, *ref);
  auto resolved = GetFunctionByQualifier(store_, ref->name, qualifier == kLatest ? "" : qualifier);
  if (!resolved.ok()) return ErrorResponse(FromStatus(resolved.status()));
  EventInvokeConfigBody fields;
  if (ApiError e = ParseEventInvokeConfigBody(req.body(), &fields); e.status) {
    return ErrorResponse(e);
  }
  const auto& [retries, age, on_success, on_failure] = fields;
  for (auto [dest, which] : {std::pair{&on_success, "OnSuccess"}, {&on_failure, "OnFailure"}}) {
    if (!*dest) continue;
    ApiError e = CheckDestination(store_, **dest, which);
    if (e.status) return ErrorResponse(e);
  }

  EventInvokeConfig config;
  if (!replace) {
    auto existing = store_.GetEventInvokeConfig(ref->name, qualifier);
    if (existing.ok()) config = *existing;
  }
  config.function = ref->name;
  config.qualifier = qualifier;
  if (replace || retries)
    config.max_retry_attempts = retries ? std::optional<int>(*retries) : std::nullopt;
  if (replace || age) config.max_event_age_s = age ? std::optional<int>(*age) : std::nullopt;
  if (replace || on_success) config.on_success = on_success.value_or("");
  if (replace || on_failure) config.on_failure = on_failure.value_or("");
  config.last_modified_ms = NowEpochMs();
  Status st = store_.PutEventInvokeConfig(config);
  if (!st.ok()) return ErrorResponse(FromStatus(st));
  std::string name = ref->name;
  boost::asio::post(io_, [this, name] { async_.ConfigChanged(name); });
  return JsonResponse(200, ConfigJson(config));
}

http::Response EventsApi::GetConfig(const http::Request&, const http::RouteMatch& m) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) return ErrorResponse(FromStatus(ref.status()));
  std::string qualifier = QualifierOf(m, *ref);
  auto fn = GetFunctionByQualifier(store_, ref->name, qualifier == kLatest ? "" : qualifier);
  if (!fn.ok()) return ErrorResponse(FromStatus(fn.status()));
  auto config = store_.GetEventInvokeConfig(ref->name, qualifier);
  if (!config.ok()) return ErrorResponse(FromStatus(config.status()));
  return JsonResponse(200, ConfigJson(*config));
}

http::Response EventsApi::DeleteConfig(const http::Request&, const http::RouteMatch& m) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) return ErrorResponse(FromStatus(ref.status()));
  std::string qualifier = QualifierOf(m, *ref);
  auto fn = GetFunctionByQualifier(store_, ref->name, qualifier == kLatest ? "" : qualifier);
  if (!fn.ok()) return ErrorResponse(FromStatus(fn.status()));
  Status st = store_.DeleteEventInvokeConfig(ref->name, qualifier);
  if (!st.ok()) return ErrorResponse(FromStatus(st));
  std::string name = ref->name;
  boost::asio::post(io_, [this, name] { async_.ConfigChanged(name); });
  return http::MakeResponse(http::beast_http::status::no_content, "");
}

http::Response EventsApi::ListConfigs(const http::Request&, const http::RouteMatch& m) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) return ErrorResponse(FromStatus(ref.status()));
  auto configs = store_.ListEventInvokeConfigs(ref->name);
  if (!configs.ok()) return ErrorResponse(FromStatus(configs.status()));
  Json list = Json::array();
  for (const auto& c : *configs) list.push_back(ConfigJson(c));
  return JsonResponse(200, {{"FunctionEventInvokeConfigs", list}});
}

void EventsApi::GetInvocation(http::Request&&, const http::RouteMatch& m,
                              http::Responder responder) {
  std::string id = m.params.at("id");
  // The running state lives only in the dispatcher's memory (engine thread).
  std::optional<std::string> resident = async_.ResidentState(id);
  PostGuarded(workers_, responder, [this, id, resident, responder] {
    auto record = queue_.Get(id);
    if (!record.ok()) {
      responder.Send(ErrorResponse(FromStatus(record.status())));
      return;
    }
    responder.Send(JsonResponse(200, RecordJson(*record, resident)));
  });
}

http::Response EventsApi::DeadLetters(const http::Request&, const http::RouteMatch& m) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) return ErrorResponse(FromStatus(ref.status()));
  int limit = 1000;
  if (auto it = m.query.find("limit"); it != m.query.end()) {
    limit = std::clamp(std::atoi(it->second.c_str()), 1, 100000);
  }
  auto letters = queue_.DeadLetters(ref->name, limit);
  if (!letters.ok()) return ErrorResponse(FromStatus(letters.status()));
  Json list = Json::array();
  for (const auto& r : *letters) {
    Json doc = RecordJson(r, std::nullopt);
    Json payload = JsonParse(r.event.payload);
    doc["Payload"] = payload.is_discarded() ? Json(r.event.payload) : payload;
    list.push_back(std::move(doc));
  }
  return JsonResponse(200, {{"FunctionName", ref->name}, {"DeadLetters", list}});
}

void EventsApi::Redrive(http::Request&& req, const http::RouteMatch& m, http::Responder r) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) {
    r.Send(ErrorResponse(FromStatus(ref.status())));
    return;
  }
  std::vector<std::string> ids;
  if (ApiError e = ParseRedriveBody(req.body(), &ids); e.status) {
    r.Send(ErrorResponse(e));
    return;
  }
  async_.Redrive(ref->name, std::move(ids), [r](Result<int> n) {
    if (!n.ok()) {
      r.Send(ErrorResponse(FromStatus(n.status())));
      return;
    }
    r.Send(JsonResponse(200, {{"Redriven", *n}}));
  });
}

// The dispatcher's counters (engine thread), then the queue's stored counts (worker pool).
void EventsApi::Stats(http::Request&&, const http::RouteMatch&, http::Responder r) {
  engine::AsyncStats s = async_.stats();
  Json doc = {{"resident", s.resident},
              {"running", s.running},
              {"backlog_on_disk", s.backlog_on_disk},
              {"accepted", s.accepted},
              {"succeeded", s.succeeded},
              {"retried", s.retried},
              {"failed", s.failed},
              {"dead_lettered", s.dead_lettered},
              {"throttled", s.throttled},
              {"commits", s.commits}};
  PostGuarded(workers_, r, [this, doc, r]() mutable {
    auto counts = queue_.Counts();
    if (counts.ok()) {
      doc["stored"] = {{"queued", counts->queued},
                       {"succeeded", counts->succeeded},
                       {"failed", counts->failed},
                       {"dead_lettered", counts->dead_lettered}};
    }
    r.Send(JsonResponse(200, doc));
  });
}

}  // namespace gust::api

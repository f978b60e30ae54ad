#include "cli/stage_schedules.h"

#include <cstdio>
#include <optional>
#include <string>

#include "cli/stage_common.h"
#include "common/json_read.h"
#include "http/router.h"

namespace gust::cli {

using Json = nlohmann::json;
using verb = http::beast_http::verb;

std::string StageSchedulesEnv(const StageSettings& stage) {
  Json events = Json::array();
  for (const ScheduledEvent& ev : stage.events) {
    events.push_back({{"function", ev.function},
                      {"expression", ev.expression},
                      {"name", ev.name},
                      {"enabled", ev.enabled}});
  }
  Json doc = {{"events", events}};
  if (stage.keep_warm) doc["keep_warm"] = stage.keep_warm_expression;
  return doc.dump();
}

Status SchedulesFromEnv(const std::string& text, StageSettings* stage) {
  // The variable is the user's to edit (UpdateFunctionConfiguration): read, never trusted.
  Json doc = JsonParse(text);
  if (!doc.is_object() || !doc.contains("events") || !doc["events"].is_array())
    return Status::InvalidArgument(std::string(kSchedulesEnv) +
                                   " is not a schedule list: " + text.substr(0, 200));
  stage->keep_warm = doc.contains("keep_warm") && doc["keep_warm"].is_string();
  if (stage->keep_warm) stage->keep_warm_expression = doc["keep_warm"].get<std::string>();
  stage->events.clear();
  for (const Json& e : doc["events"]) {
    if (!e.is_object())
      return Status::InvalidArgument(std::string(kSchedulesEnv) + ": an event is not an object");
    stage->events.push_back({JsonStringOr(e, "function", ""), JsonStringOr(e, "expression", ""),
                             JsonStringOr(e, "name", ""), JsonBoolOr(e, "enabled", true)});
  }
  return Status::Ok();
}

Json StageScheduleDocuments(const StageSettings& stage, const std::string& qualifier) {
  Json list = Json::array();
  const std::string& fn = stage.function_name;
  if (stage.keep_warm) {
    list.push_back({{"name", fn + "-keep-warm"},
                    {"function", fn},
                    {"qualifier", qualifier},
                    {"expression", stage.keep_warm_expression},
                    {"kind", "keep_warm"}});
  }
  for (const ScheduledEvent& ev : stage.events) {
    list.push_back({{"name", ev.name.empty() ? fn + "-" + ev.function : ev.name},
                    {"function", fn},
                    {"qualifier", qualifier},
                    {"expression", ev.expression},
                    {"enabled", ev.enabled},
                    {"kind", "invoke"},
                    {"payload", {{"gust_function", ev.function}}}});
  }
  return {{"schedules", list}};
}

Status ApplyStageSchedules(ApiClient& api, const StageSettings& stage, Json* applied) {
  // A function deployed by `gust deploy STAGE` has `live`; one made by hand
  // and scheduled with `gust schedule` may not: then its $LATEST runs.
  GUST_ASSIGN_OR_RETURN(std::optional<std::string> live, LiveVersion(api, stage.function_name));
  GUST_ASSIGN_OR_RETURN(
      Json answer,
      api.CallJson(verb::put, "/v1/schedule-groups/" + http::PercentEncode(stage.function_name),
                   StageScheduleDocuments(stage, live ? kLiveAlias : "")));
  if (applied != nullptr) *applied = std::move(answer);
  return Status::Ok();
}

Status RemoveStageSchedules(ApiClient& api, const StageSettings& stage, int* removed) {
  GUST_ASSIGN_OR_RETURN(
      Json answer, api.CallJson(verb::delete_,
                                "/v1/schedules?group=" + http::PercentEncode(stage.function_name)));
  if (removed != nullptr) *removed = answer.value("deleted", 0);
  return Status::Ok();
}

void PrintSchedules(const Json& list) {
  const Json& items = list.contains("schedules") ? list["schedules"] : list;
  if (items.empty()) {
    std::printf(
        "(no schedules: `gust schedule STAGE` applies a stage's keep_warm and events, or "
        "PUT /v1/schedules/NAME)\n");
    return;
  }
  std::printf("%-40s %-9s %-24s %-26s %-3s %-24s %s\n", "NAME", "KIND", "FUNCTION", "EXPRESSION",
              "ON", "NEXT FIRE (UTC)", "LAST FIRE");
  for (const Json& s : items) {
    auto text = [&](const char* key) {
      return s.contains(key) && s[key].is_string() ? s[key].get<std::string>() : std::string("-");
    };
    std::string function = text("function");
    if (!s.value("qualifier", "").empty()) function += ":" + s.value("qualifier", "");
    std::string expression = text("expression");
    if (s.value("timezone", "UTC") != "UTC") expression += " " + s.value("timezone", "");
    std::string last = text("last_fire");
    if (!s.value("last_error", "").empty()) last += " (error: " + s.value("last_error", "") + ")";
    std::printf("%-40s %-9s %-24s %-26s %-3s %-24s %s\n", text("name").c_str(),
                text("kind").c_str(), function.c_str(), expression.c_str(),
                s.value("enabled", false) ? "yes" : "no", text("next_fire").c_str(), last.c_str());
  }
}

}  // namespace gust::cli

// Settings -> schedules: the one place that turns a stage's keep_warm /
// keep_warm_expression and events [{function, expression, name?, enabled?}]
// into engine schedules. `gust schedule STAGE` / `gust unschedule STAGE` call
// it, and so do `gust deploy STAGE` / `gust undeploy STAGE`.
//
// The stage's schedules form one group named after the stage's function
// (StageSettings::function_name); applying replaces that group whole, in one
// engine call that validates everything first (an invalid expression changes
// nothing and names its position). Schedule names:
//   keep-warm:  "<function_name>-keep-warm"   (kind keep_warm: Invoker::Warm,
//               never the handler)
//   events:     the event's name, else "<function_name>-<module.function>"
//               (Zappa's rule naming: its handler takes the text after the
//               last '-' of the rule name as the function to call); the
//               Scheduled Event also carries "gust_function": "module.function".
//
// Schedules follow the stage's live version: each schedule targets the alias
// `live` (qualifier), so a tick runs the code HTTP serves; and each published
// version carries its own keep_warm/events in its environment
// (kSchedulesEnv), so `gust rollback` restores the expressions of the version
// it makes live, and a failed `gust update` (live unchanged) changes nothing.
//
// Thread-safety: uses the caller's ApiClient (one thread).
#pragma once

#include <nlohmann/json.hpp>

#include "cli/api_client.h"
#include "cli/settings.h"
#include "common/status.h"

namespace gust::cli {

// The environment variable of a stage function holding its schedules (the
// stage's keep_warm and events, as JSON): published with each version.
inline constexpr const char* kSchedulesEnv = "GUST_STAGE_SCHEDULES";
std::string StageSchedulesEnv(const StageSettings& stage);
// Sets stage's keep_warm, keep_warm_expression and events from a
// StageSchedulesEnv text; InvalidArgument if it is not one.
Status SchedulesFromEnv(const std::string& text, StageSettings* stage);

// The schedule documents ApplyStageSchedules sends (for tests and dry runs):
// each runs `qualifier` of the stage function ("live"; "" for $LATEST).
nlohmann::json StageScheduleDocuments(const StageSettings& stage,
                                      const std::string& qualifier = "live");
// Replaces the stage's schedule group, targeting `live` when the function
// has that alias (else $LATEST); applied (optional) gets the engine's
// answer: {"schedules": [... with next_fire ...]}.
Status ApplyStageSchedules(ApiClient& api, const StageSettings& stage,
                           nlohmann::json* applied = nullptr);
// Deletes the stage's schedule group; removed (optional) gets how many went.
Status RemoveStageSchedules(ApiClient& api, const StageSettings& stage, int* removed = nullptr);
// Prints schedules ({"schedules": [...]}) as a table.
void PrintSchedules(const nlohmann::json& list);

}  // namespace gust::cli

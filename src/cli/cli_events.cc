// Event commands: schedules, schedule STAGE, unschedule STAGE, get-invocation
// ID, dlq NAME [--redrive] — thin clients of /v1 (docs/EVENTS.md).
#include <cstdio>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/settings.h"
#include "cli/stage_common.h"
#include "cli/stage_schedules.h"
#include "common/clock.h"
#include "http/router.h"

namespace gust::cli {
namespace {

using verb = http::beast_http::verb;
using Json = nlohmann::json;

std::string Ms(const Json& doc, const char* key) {
  return doc.contains(key) && doc[key].is_number() ? FormatIso8601(doc[key].get<int64_t>()) : "-";
}

Status GetInvocation(ApiClient& api, const std::string& id) {
  GUST_ASSIGN_OR_RETURN(
      Json r, api.CallJson(verb::get, "/v1/async-invocations/" + http::PercentEncode(id)));
  std::printf("request id:   %s\nfunction:     %s:%s\nstatus:       %s\nattempts:     %d\n",
              r.value("RequestId", "").c_str(), r.value("FunctionName", "").c_str(),
              r.value("Qualifier", "").c_str(), r.value("Status", "").c_str(),
              r.value("Attempts", 0));
  std::printf("source:       %s\nenqueued:     %s\n", r.value("Source", "").c_str(),
              Ms(r, "EnqueuedMs").c_str());
  if (r.contains("LastAttemptMs"))
    std::printf("last attempt: %s\n", Ms(r, "LastAttemptMs").c_str());
  if (r.contains("NextAttemptMs"))
    std::printf("next attempt: %s\n", Ms(r, "NextAttemptMs").c_str());
  if (r.contains("FinishedMs")) std::printf("finished:     %s\n", Ms(r, "FinishedMs").c_str());
  if (r.contains("Condition")) std::printf("condition:    %s\n", r.value("Condition", "").c_str());
  if (r.contains("Destination"))
    std::printf("sent to:      %s\n", r.value("Destination", "").c_str());
  if (r.contains("Result")) std::printf("result:       %s\n", r["Result"].dump().c_str());
  if (r.contains("Error")) std::printf("error:        %s\n", r["Error"].dump().c_str());
  if (r.value("ResponseTruncated", false)) std::printf("(response cut at 256 KB)\n");
  return Status::Ok();
}

Status DeadLetters(ApiClient& api, const std::string& name, bool redrive,
                   const std::vector<std::string>& ids) {
  std::string base = "/v1/functions/" + http::PercentEncode(name) + "/dead-letters";
  if (redrive) {
    Json body = Json::object();
    if (!ids.empty()) body["request_ids"] = ids;
    GUST_ASSIGN_OR_RETURN(Json r, api.CallJson(verb::post, base + "/redrive", body));
    std::printf("redriven %d event(s) of %s: they are queued again (attempts from 0)\n",
                r.value("Redriven", 0), name.c_str());
    return Status::Ok();
  }
  GUST_ASSIGN_OR_RETURN(Json r, api.CallJson(verb::get, base));
  const Json& letters = r["DeadLetters"];
  if (letters.empty()) {
    std::printf("(no dead letters for %s)\n", name.c_str());
    return Status::Ok();
  }
  std::printf("%-36s %-24s %-17s %8s  %s\n", "REQUEST ID", "FAILED AT (UTC)", "CONDITION",
              "ATTEMPTS", "ERROR");
  for (const Json& d : letters) {
    std::string error = "-";
    if (d.contains("Error")) {
      const Json& e = d["Error"];
      error =
          e.is_object() ? e.value("errorType", "") + ": " + e.value("errorMessage", "") : e.dump();
    }
    if (error.size() > 100) error = error.substr(0, 97) + "...";
    std::printf("%-36s %-24s %-17s %8d  %s\n", d.value("RequestId", "").c_str(),
                Ms(d, "FinishedMs").c_str(), d.value("Condition", "").c_str(),
                d.value("Attempts", 0), error.c_str());
  }
  std::printf("%zu dead letter(s); `gust dlq %s --redrive` queues them again\n", letters.size(),
              name.c_str());
  return Status::Ok();
}

}  // namespace

void AddEventCommands(CLI::App& app, std::shared_ptr<CliState> state) {
  auto group = std::make_shared<std::string>();
  auto* list = app.add_subcommand(
      "schedules", "List schedules with their next fire time (UTC), last fire and last error");
  list->add_option("--group", *group, "Only this group (a stage's function name)");
  list->callback(WithClient(state, [group](ApiClient& api) -> Status {
    std::string target = "/v1/schedules";
    if (!group->empty()) target += "?group=" + http::PercentEncode(*group);
    GUST_ASSIGN_OR_RETURN(Json r, api.CallJson(verb::get, target));
    PrintSchedules(r);
    return Status::Ok();
  }));

  struct StageOptions {
    std::string stage, project = ".";
  };
  auto sched = std::make_shared<StageOptions>();
  auto* schedule = app.add_subcommand(
      "schedule",
      "Apply a stage's keep_warm and events from gust_settings.json (or zappa_settings.json) "
      "as schedules, replacing the stage's previous ones");
  schedule->add_option("stage", sched->stage, kStageArgumentHelp);
  schedule->add_option("--project", sched->project, "Project directory holding the settings file")
      ->capture_default_str();
  schedule->callback(WithClient(state, [sched](ApiClient& api) -> Status {
    GUST_ASSIGN_OR_RETURN(StageSettings stage, LoadStageVerbose(sched->project, sched->stage));
    Json applied;
    GUST_RETURN_IF_ERROR(ApplyStageSchedules(api, stage, &applied));
    std::printf("scheduled %zu for %s (group %s)\n", applied["schedules"].size(),
                stage.stage.c_str(), stage.function_name.c_str());
    PrintSchedules(applied);
    return Status::Ok();
  }));

  auto unsched = std::make_shared<StageOptions>();
  auto* unschedule = app.add_subcommand("unschedule", "Remove every schedule of a stage");
  unschedule->add_option("stage", unsched->stage, kStageArgumentHelp);
  unschedule
      ->add_option("--project", unsched->project, "Project directory holding the settings file")
      ->capture_default_str();
  unschedule->callback(WithClient(state, [unsched](ApiClient& api) -> Status {
    GUST_ASSIGN_OR_RETURN(StageSettings stage, LoadStageVerbose(unsched->project, unsched->stage));
    int removed = 0;
    GUST_RETURN_IF_ERROR(RemoveStageSchedules(api, stage, &removed));
    std::printf("removed %d schedule(s) of %s (group %s)\n", removed, stage.stage.c_str(),
                stage.function_name.c_str());
    return Status::Ok();
  }));

  auto id = std::make_shared<std::string>();
  auto* get = app.add_subcommand(
      "get-invocation",
      "Show an asynchronous invocation: status (queued, running, succeeded, failed, "
      "dead-lettered), attempts, result or error");
  get->add_option("id", *id, "Request id (printed by `gust invoke --async`)")->required();
  get->callback(WithClient(state, [id](ApiClient& api) { return GetInvocation(api, *id); }));

  struct DlqOptions {
    std::string name;
    bool redrive = false;
    std::vector<std::string> ids;
  };
  auto dlq_opts = std::make_shared<DlqOptions>();
  auto* dlq = app.add_subcommand(
      "dlq", "List a function's dead-lettered asynchronous invocations, or send them again");
  dlq->add_option("name", dlq_opts->name, "Function name")->required();
  dlq->add_flag("--redrive", dlq_opts->redrive, "Queue the dead letters again (attempts from 0)");
  dlq->add_option("--id", dlq_opts->ids, "With --redrive: only this request id (repeatable)");
  dlq->callback(WithClient(state, [dlq_opts](ApiClient& api) {
    return DeadLetters(api, dlq_opts->name, dlq_opts->redrive, dlq_opts->ids);
  }));
}

}  // namespace gust::cli

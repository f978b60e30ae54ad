// Zappa's workflow on gust, the commands that change a stage: deploy STAGE,
// update, rollback, undeploy, package, invoke STAGE mod.fn. One Lambda
// function per stage (StageSettings::function_name); each deploy/update
// publishes a version and points the alias `live` at it, so the gateway's
// traffic switches atomically, after the new version proved it imports.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "api/lambda_shapes.h"
#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/package.h"
#include "cli/stage_common.h"
#include "cli/stage_schedules.h"
#include "common/base64.h"
#include "http/router.h"

namespace gust::cli {

using verb = http::beast_http::verb;
using Json = nlohmann::json;

// ---------------------------------------------------------------- shared (stage_common.h)

Result<StageSettings> LoadStageVerbose(const std::string& project_dir, const std::string& stage) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStage(project_dir, stage));
  std::fprintf(stderr, "reading %s, stage %s (function %s)\n", s.source_file.c_str(),
               s.stage.c_str(), s.function_name.c_str());
  for (const auto& w : s.warnings) std::fprintf(stderr, "gust: warning: %s\n", w.c_str());
  return s;
}

namespace {

// What the stage serves, for messages: the app, the handler, or an event-only
// project's functions.
std::string AppName(const StageSettings& s) {
  if (!s.app_function.empty()) return s.app_function;
  if (!s.lambda_handler.empty()) return s.lambda_handler;
  std::string names;
  for (const auto& ev : s.events) names += (names.empty() ? "" : ", ") + ev.function;
  return "the events' functions (" + names + ")";
}

}  // namespace

Json StageFunctionConfig(const StageSettings& s) {
  Json env = Json::object();
  for (const auto& [k, v] : s.environment) env[k] = v;
  if (!s.app_function.empty()) env["GUST_APP_FUNCTION"] = s.app_function;
  if (!s.lambda_handler.empty()) env["GUST_LAMBDA_HANDLER"] = s.lambda_handler;
  env["GUST_STAGE"] = s.stage;
  env[kSchedulesEnv] = StageSchedulesEnv(s);  // published with the version: see RollbackStage
  if (s.authorization != "none") env[kWebAuthorizationEnv] = s.authorization;
  Json config = {
      {"Handler", kStageHandler},
      {"Runtime", s.runtime},
      {"MemorySize", s.memory_mb},
      {"Timeout", s.timeout_s},
      {"Network", s.network},
      {"Description", "stage " + s.stage + " of " + s.project_name + " (" + AppName(s) + ")"},
      {"Environment", {{"Variables", env}}}};
  if (s.keep_alive_s) config["KeepAliveSeconds"] = *s.keep_alive_s;
  // Always sent: a stage whose "python" was removed goes back to the engine's.
  config[api::kPythonField] = s.python;
  return config;
}

std::string PathUrl(const std::string& engine_url, const std::string& function) {
  std::string base = engine_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/web/" + function + "/";
}

std::string HostUrl(const std::string& engine_url, const std::string& function) {
  for (const char* host : {"://127.0.0.1", "://localhost"}) {
    size_t at = engine_url.find(host);
    if (at == std::string::npos) continue;
    std::string rest = engine_url.substr(at + std::string(host).size());
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    return engine_url.substr(0, at) + "://" + function + ".localhost" + rest + "/";
  }
  return "";
}

Result<std::optional<std::string>> LiveVersion(ApiClient& api, const std::string& function) {
  auto alias = api.CallJson(verb::get, FunctionPath(function, "/aliases/") + kLiveAlias);
  if (alias.ok()) return std::optional<std::string>(alias->value("FunctionVersion", ""));
  if (alias.status().code() != Code::kNotFound) return alias.status();
  GUST_ASSIGN_OR_RETURN(Json fn, api.CallJson(verb::get, FunctionPath(function, "/configuration")));
  (void)fn;
  return std::optional<std::string>();
}

Status RequireDeployed(ApiClient& api, const StageSettings& s) {
  auto fn = api.Call(verb::get, FunctionPath(s.function_name, "/configuration"));
  if (fn.ok()) return Status::Ok();
  if (fn.status().code() != Code::kNotFound) return fn.status();
  return Status::NotFound("stage " + s.stage + " is not deployed (no function " + s.function_name +
                          "); deploy it with `gust deploy " + s.stage + "`");
}

// ---------------------------------------------------------------- steps

namespace {

Result<Bundle> PackageVerbose(const StageSettings& s, const std::string& project_dir) {
  GUST_ASSIGN_OR_RETURN(Bundle b, PackageStage(s, project_dir));
  for (const auto& w : b.warnings) std::fprintf(stderr, "gust: warning: %s\n", w.c_str());
  std::printf("packaged %d files: %s unzipped, %s zipped (limit %s unzipped)\n", b.files,
              HumanBytes(b.unzipped_bytes).c_str(), HumanBytes(b.zip.size()).c_str(),
              HumanBytes(kMaxUnzippedBytes).c_str());
  if (!b.venv_dir.empty()) {
    std::string packages;
    for (const auto& p : b.venv_packages) packages += (packages.empty() ? "" : ", ") + p;
    std::printf("  from the virtualenv %s: %s\n", b.venv_dir.c_str(),
                packages.empty() ? "no packages besides pip/setuptools" : packages.c_str());
  }
  return b;
}

Status ApplyConcurrency(ApiClient& api, const StageSettings& s) {
  if (!s.concurrency) return Status::Ok();
  return api
      .CallJson(verb::put,
                "/2017-10-31/functions/" + http::PercentEncode(s.function_name) + "/concurrency",
                {{"ReservedConcurrentExecutions", *s.concurrency}})
      .status();
}

// Starts one sandbox of `version` without calling the app: its init imports
// the app, so a broken import fails here, at deploy time.
Status CheckImports(ApiClient& api, const StageSettings& s, const std::string& version) {
  GUST_ASSIGN_OR_RETURN(
      Json r, api.CallJson(verb::post, "/v1/functions/" + http::PercentEncode(s.function_name) +
                                           "/warm?Qualifier=" + version));
  if (r.contains("FunctionError")) {
    const Json& error = r["Error"];
    std::string log = r.value("InitLog", "");
    if (!log.empty()) std::fprintf(stderr, "%s%s", log.c_str(), log.back() == '\n' ? "" : "\n");
    if (error.contains("stackTrace") && error["stackTrace"].is_array() &&
        !error["stackTrace"].empty()) {
      std::fprintf(stderr, "Traceback (most recent call last):\n");
      for (const auto& frame : error["stackTrace"]) {
        if (frame.is_string()) std::fprintf(stderr, "%s", frame.get<std::string>().c_str());
      }
    }
    return Status::InvalidArgument(AppName(s) +
                                   " cannot be imported: " + error.value("errorType", "Error") +
                                   ": " + error.value("errorMessage", ""));
  }
  double init_ms = r.value("InitDurationMs", 0.0);
  std::printf("import check: %s imports", AppName(s).c_str());
  if (r.value("Spawned", false)) std::printf(" (cold start %.1f ms)", init_ms);
  std::printf("\n");
  if (init_ms > 250) {
    std::printf(
        "  hint: cold starts import the app's dependencies; an engine started with `gust up "
        "--preload flask` (or the modules you use) has them imported once for every sandbox\n");
  }
  return Status::Ok();
}

void PrintUrls(ApiClient& api, const StageSettings& s) {
  if (s.app_function.empty() && s.lambda_handler.empty()) {
    std::printf(
        "no web route: an event-only project (no app_function); its events run on their "
        "schedules, `gust invoke %s module.function` runs one now\n",
        s.stage.c_str());
    return;
  }
  std::printf("URL: %s\n", PathUrl(api.url(), s.function_name).c_str());
  std::string host = HostUrl(api.url(), s.function_name);
  if (!host.empty() && s.lambda_handler.empty()) std::printf("     %s\n", host.c_str());
  if (!s.lambda_handler.empty())
    std::printf("  (%s gets API Gateway v2.0 events for HTTP requests)\n",
                s.lambda_handler.c_str());
}

Status SetLive(ApiClient& api, const StageSettings& s, const std::string& version, bool exists) {
  std::string aliases = FunctionPath(s.function_name, "/aliases");
  if (exists) {
    return api.CallJson(verb::put, aliases + "/" + kLiveAlias, {{"FunctionVersion", version}})
        .status();
  }
  return api.CallJson(verb::post, aliases, {{"Name", kLiveAlias}, {"FunctionVersion", version}})
      .status();
}

// Replaces the stage's schedule group with its keep_warm and events, and says
// what is scheduled (silent when the stage has none).
Status ScheduleStage(ApiClient& api, const StageSettings& s) {
  Json applied;
  GUST_RETURN_IF_ERROR(ApplyStageSchedules(api, s, &applied));
  const Json& list = applied.contains("schedules") ? applied["schedules"] : Json::array();
  for (const Json& one : list) {
    std::printf("scheduled %s: %s\n", one.value("name", "").c_str(),
                one.value("expression", "").c_str());
  }
  return Status::Ok();
}

// Applies the schedules `version` was published with (its kSchedulesEnv), so
// they are those of the code live now serves. A version published before
// gust kept them leaves the schedules as they are, saying so.
Status RestoreSchedules(ApiClient& api, StageSettings s, const std::string& version) {
  GUST_ASSIGN_OR_RETURN(Json config,
                        api.CallJson(verb::get, FunctionPath(s.function_name, "/configuration") +
                                                    "?Qualifier=" + http::PercentEncode(version)));
  const Json env = config.value("Environment", Json::object()).value("Variables", Json::object());
  if (!env.contains(kSchedulesEnv) || !env[kSchedulesEnv].is_string()) {
    std::printf("version %s has no record of its schedules: they are left as they are\n",
                version.c_str());
    return Status::Ok();
  }
  GUST_RETURN_IF_ERROR(SchedulesFromEnv(env[kSchedulesEnv].get<std::string>(), &s));
  return ScheduleStage(api, s);
}

Status UpdateStage(ApiClient& api, const std::string& stage, const std::string& project) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  GUST_RETURN_IF_ERROR(RequireDeployed(api, s));
  GUST_ASSIGN_OR_RETURN(std::optional<std::string> live, LiveVersion(api, s.function_name));
  GUST_ASSIGN_OR_RETURN(Bundle bundle, PackageVerbose(s, project));
  GUST_RETURN_IF_ERROR(api.CallJson(verb::put, FunctionPath(s.function_name, "/configuration"),
                                    StageFunctionConfig(s))
                           .status());
  GUST_ASSIGN_OR_RETURN(Json published,
                        api.CallJson(verb::put, FunctionPath(s.function_name, "/code"),
                                     {{"ZipFile", Base64Encode(bundle.zip)}, {"Publish", true}}));
  GUST_RETURN_IF_ERROR(ApplyConcurrency(api, s));
  std::string version = published.value("Version", "");
  if (live && *live == version) {
    std::printf("no changes: version %s is live already\n", version.c_str());
    GUST_RETURN_IF_ERROR(ScheduleStage(api, s));  // the same expressions: phases are kept
    PrintUrls(api, s);
    return Status::Ok();
  }
  // A failure from here on leaves the new version published without traffic.
  auto not_live = [&](const Status& failed) {
    return Status(failed.code(),
                  failed.message() + "\n  version " + version +
                      " was published but gets no traffic; " +
                      (live ? "live still serves version " + *live : "nothing is live"));
  };
  Status imports = CheckImports(api, s, version);
  if (!imports.ok()) return not_live(imports);
  GUST_RETURN_IF_ERROR(SetLive(api, s, version, live.has_value()));
  // Only now: the schedules are the live version's, and a failed import check
  // above left the old ones running the old live version. An expression the
  // engine refuses (the group is validated whole, nothing applied) puts live
  // back, so a failed update changes nothing.
  Status scheduled = ScheduleStage(api, s);
  if (!scheduled.ok()) {
    if (live) (void)SetLive(api, s, *live, true);
    return not_live(scheduled);
  }
  std::printf("updated stage %s: live -> version %s%s\n", s.stage.c_str(), version.c_str(),
              live ? (" (was " + *live + ")").c_str() : "");
  PrintUrls(api, s);
  return Status::Ok();
}

Status RollbackStage(ApiClient& api, const std::string& stage, const std::string& project,
                     int steps) {
  if (steps < 1) return Status::InvalidArgument("-n must be 1 or more");
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  GUST_RETURN_IF_ERROR(RequireDeployed(api, s));
  GUST_ASSIGN_OR_RETURN(std::optional<std::string> live, LiveVersion(api, s.function_name));
  if (!live) return Status::NotFound("stage " + s.stage + " has no live version to roll back from");
  GUST_ASSIGN_OR_RETURN(Json list,
                        api.CallJson(verb::get, FunctionPath(s.function_name, "/versions")));
  std::vector<std::string> published;
  for (const auto& v : list["Versions"]) {
    std::string n = v.value("Version", "");
    if (n != "$LATEST") published.push_back(n);
  }
  auto at = std::find(published.begin(), published.end(), *live);
  if (at == published.end())
    return Status::NotFound("live points at version " + *live + ", which no longer exists");
  long index = at - published.begin();
  if (index - steps < 0) {
    std::string kept;
    for (const auto& v : published) kept += (kept.empty() ? "" : " ") + v;
    return Status::InvalidArgument(
        "cannot go back " + std::to_string(steps) + " versions from version " + *live + ": only " +
        std::to_string(index) + " older version" + (index == 1 ? " is" : "s are") +
        " kept (versions: " + kept + ")");
  }
  const std::string& target = published[static_cast<size_t>(index - steps)];
  GUST_RETURN_IF_ERROR(SetLive(api, s, target, true));
  std::printf("rolled back stage %s: live -> version %s (was %s)\n", s.stage.c_str(),
              target.c_str(), live->c_str());
  GUST_RETURN_IF_ERROR(RestoreSchedules(api, s, target));
  PrintUrls(api, s);
  return Status::Ok();
}

Status UndeployStage(ApiClient& api, const std::string& stage, const std::string& project, bool yes,
                     int& exit_code) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  GUST_RETURN_IF_ERROR(RequireDeployed(api, s));
  if (!yes) {
    std::printf(
        "Undeploy stage %s? This deletes function %s with all its versions, its URL and "
        "its logs. [y/N] ",
        s.stage.c_str(), s.function_name.c_str());
    std::fflush(stdout);
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      std::printf("\nnot undeployed (answer y, or pass --yes)\n");
      exit_code = 1;
      return Status::Ok();
    }
  }
  int unscheduled = 0;
  GUST_RETURN_IF_ERROR(RemoveStageSchedules(api, s, &unscheduled));
  GUST_RETURN_IF_ERROR(api.Call(verb::delete_, FunctionPath(s.function_name)).status());
  std::printf("undeployed stage %s (function %s deleted", s.stage.c_str(), s.function_name.c_str());
  if (unscheduled > 0) std::printf(", %d schedule(s) removed", unscheduled);
  std::printf(")\n");
  return Status::Ok();
}

Status PackageCommand(const std::string& stage, const std::string& project,
                      const std::string& output) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  GUST_ASSIGN_OR_RETURN(Bundle bundle, PackageVerbose(s, project));
  std::string path = output.empty() ? s.function_name + ".zip" : output;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bundle.zip.data(), static_cast<std::streamsize>(bundle.zip.size()));
  out.close();
  if (!out) return Status::IoError("cannot write " + path);
  std::printf("wrote %s (%s)\n", path.c_str(), HumanBytes(bundle.zip.size()).c_str());
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------- deploy / invoke forms

Status DeployStage(ApiClient& api, const std::string& stage, const std::string& project) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  auto existing = api.Call(verb::get, FunctionPath(s.function_name, "/configuration"));
  if (existing.ok())
    return Status::Conflict("stage " + s.stage + " is already deployed (function " +
                            s.function_name + "); update it with `gust update " + s.stage + "`");
  if (existing.status().code() != Code::kNotFound) return existing.status();
  GUST_ASSIGN_OR_RETURN(Bundle bundle, PackageVerbose(s, project));
  Json create = StageFunctionConfig(s);
  create["FunctionName"] = s.function_name;
  create["Role"] = "arn:aws:iam::000000000000:role/gust";
  create["Code"] = {{"ZipFile", Base64Encode(bundle.zip)}};
  create["Publish"] = true;
  GUST_ASSIGN_OR_RETURN(Json created, api.CallJson(verb::post, "/2015-03-31/functions", create));
  std::string version = created.value("Version", "1");
  Status st = ApplyConcurrency(api, s);
  if (st.ok()) st = CheckImports(api, s, version);
  if (st.ok()) st = SetLive(api, s, version, false);
  if (st.ok()) st = ScheduleStage(api, s);
  if (!st.ok()) {
    // Nothing half-deployed: the next `gust deploy` starts from scratch.
    (void)RemoveStageSchedules(api, s);
    (void)api.Call(verb::delete_, FunctionPath(s.function_name));
    return Status(st.code(), st.message() +
                                 "\n  nothing was deployed; fix it and run `gust deploy " +
                                 s.stage + "` again");
  }
  std::printf("deployed stage %s: function %s, version %s live\n", s.stage.c_str(),
              s.function_name.c_str(), version.c_str());
  PrintUrls(api, s);
  return Status::Ok();
}

Status InvokeStage(ApiClient& api, const std::string& stage, const std::string& project,
                   const std::string& function, bool raw, int& exit_code) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  GUST_RETURN_IF_ERROR(RequireDeployed(api, s));
  GUST_ASSIGN_OR_RETURN(std::optional<std::string> live, LiveVersion(api, s.function_name));
  Json payload = raw ? Json{{"raw_command", function}} : Json{{"command", function}};
  return InvokeAndPrint(api, s.function_name, live ? kLiveAlias : "", payload.dump(), true,
                        exit_code);
}

// ---------------------------------------------------------------- registration

void AddStageCommands(CLI::App& app, std::shared_ptr<CliState> state) {
  struct Args {
    std::string stage, project = ".", output, since = "1h", filter;
    int steps = 1;
    bool yes = false, http = false, non_http = false, no_follow = false;
  };
  auto add = [&app](const char* name, const char* help, std::shared_ptr<Args> a) {
    auto* cmd = app.add_subcommand(name, help);
    cmd->add_option("stage", a->stage, kStageArgumentHelp);
    cmd->add_option("--project", a->project,
                    "Project directory holding gust_settings.json or zappa_settings.json")
        ->capture_default_str();
    return cmd;
  };

  auto up = std::make_shared<Args>();
  add("update", "Deploy a stage's changes: a new version, traffic switched atomically", up)
      ->footer(
          "Packages the project again, updates the stage's function and publishes a version,\n"
          "checks that it imports, then points the alias `live` at it: new requests go to the\n"
          "new version, requests in flight finish on the old one. If the import check fails,\n"
          "live keeps serving the previous version.")
      ->callback(WithClient(
          state, [up](ApiClient& api) { return UpdateStage(api, up->stage, up->project); }));

  auto rb = std::make_shared<Args>();
  auto* rollback = add("rollback", "Point a stage's traffic back N published versions", rb);
  rollback->add_option("-n,--number", rb->steps, "How many versions back")->capture_default_str();
  rollback->callback(WithClient(state, [rb](ApiClient& api) {
    return RollbackStage(api, rb->stage, rb->project, rb->steps);
  }));

  auto ud = std::make_shared<Args>();
  auto* undeploy = add("undeploy", "Delete a stage: its function, versions, URL and logs", ud);
  undeploy->add_flag("--yes,-y", ud->yes, "Do not ask for confirmation");
  undeploy->callback(WithClient(state, [ud, state](ApiClient& api) {
    return UndeployStage(api, ud->stage, ud->project, ud->yes, state->exit_code);
  }));

  auto pk = std::make_shared<Args>();
  auto* package = add("package", "Write a stage's bundle to a zip without deploying", pk);
  package->footer(
      "The bundle is the project directory minus `exclude` patterns and junk (.git,\n"
      "__pycache__, virtualenvs, *.zip), plus the packages of its virtualenv (\"venv\", else\n"
      "$VIRTUAL_ENV, ./venv or ./.venv) without pip/setuptools. Its size is printed; over\n"
      "250 MB unzipped it is refused.");
  package->add_option("-o,--output", pk->output, "Zip file to write (default: <function>.zip)");
  package->callback([pk, state] {
    Status st = PackageCommand(pk->stage, pk->project, pk->output);
    if (!st.ok()) state->exit_code = Fail(st.message());
  });

  auto st = std::make_shared<Args>();
  add("status", "Show a stage's URL, versions and the last 24 h of traffic", st)
      ->footer(
          "Prints the URL, the app, the live version and the versions kept, memory, timeout,\n"
          "the sandboxes running now, and from the invocation records of the last 24 h:\n"
          "invocations, errors, cold starts and p50/p99 duration.")
      ->callback(WithClient(
          state, [st](ApiClient& api) { return ShowStageStatus(api, st->stage, st->project); }));

  auto tl = std::make_shared<Args>();
  auto* tail = add("tail", "Print a stage's logs and follow them live (like `zappa tail`)", tl);
  tail->add_option("--since", tl->since, "Start this far back (e.g. 10m, 1h, 2d)")
      ->capture_default_str();
  tail->add_option("--filter", tl->filter, "Only lines containing this text");
  auto* http_flag = tail->add_flag("--http", tl->http, "Only the HTTP access lines");
  tail->add_flag("--non-http", tl->non_http, "Everything but the HTTP access lines")
      ->excludes(http_flag);
  tail->add_flag("--no-follow", tl->no_follow, "Print what is there and exit");
  tail->callback(WithClient(state, [tl](ApiClient& api) {
    return TailStage(api, tl->stage, tl->project, tl->since, tl->filter, tl->http, tl->non_http,
                     !tl->no_follow);
  }));

  auto in = std::make_shared<Args>();
  auto* init =
      app.add_subcommand("init", "Write a project's gust_settings.json (like `zappa init`)");
  init->footer(
      "Asks the stage name, the WSGI app (a `x = Flask(...)` in the project's modules is found\n"
      "and offered), the project name, memory and timeout; Enter takes the default shown.\n"
      "Refuses to overwrite an existing settings file.");
  init->add_option("--project", in->project, "Project directory")->capture_default_str();
  init->add_flag("--yes,-y", in->yes, "Take every default without asking");
  init->callback([in, state] {
    Status s = InitProject(in->project, in->yes);
    if (!s.ok()) state->exit_code = Fail(s.message());
  });
}

}  // namespace gust::cli

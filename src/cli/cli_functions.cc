// Function commands: deploy, invoke, ls, info, rm, logs, publish — thin
// clients of the Lambda API (and /v1 for logs).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "api/lambda_shapes.h"
#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/settings.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "engine/map_functions.h"
#include "http/router.h"
#include "store/code_bundle.h"

namespace gust::cli {
namespace {

using verb = http::beast_http::verb;
using Json = nlohmann::json;

const std::string kFunctions = "/2015-03-31/functions";

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::string> LoadCode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::NotFound("no such file or directory: " + path);
  if (S_ISDIR(st.st_mode)) return ZipDirectory(path);
  if (path.size() < 4 || path.substr(path.size() - 4) != ".zip") {
    return Status::InvalidArgument(path + " is neither a directory nor a .zip file");
  }
  return ReadFile(path);
}

std::string Target(const std::string& name, const std::string& suffix = "") {
  return FunctionPath(name, suffix);
}

struct DeployOptions {
  std::string name, path, handler, runtime = "python3.11", keep_alive, project = ".";
  int memory = 0, timeout = 0, concurrency = -1;
  std::vector<std::string> env;
  std::vector<std::string> buckets;  // --bucket NAME[:ro]; none given: left as they are
  bool network = false;
  std::optional<std::string> python;  // --python: "" back to the engine's own
};

Status Deploy(ApiClient& api, const DeployOptions& o) {
  GUST_ASSIGN_OR_RETURN(std::string zip, LoadCode(o.path));
  std::map<std::string, std::string> env;
  for (const auto& kv : o.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("--env takes KEY=VALUE, got '" + kv + "'");
    }
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  Json config = Json::object();
  if (!o.handler.empty()) config["Handler"] = o.handler;
  config["Runtime"] = o.runtime;
  if (o.memory) config["MemorySize"] = o.memory;
  if (o.timeout) config["Timeout"] = o.timeout;
  if (!o.env.empty()) config["Environment"] = {{"Variables", env}};
  config["Network"] = o.network;
  if (o.python) config[api::kPythonField] = PythonSetting(*o.python, ".");
  if (!o.buckets.empty()) config[api::kBucketsField] = o.buckets;  // checked by the engine
  if (!o.keep_alive.empty()) {
    int64_t ms = ParseDurationMs(o.keep_alive);
    if (ms < 0)
      return Status::InvalidArgument("--keep-alive '" + o.keep_alive + "' is not a duration");
    config["KeepAliveSeconds"] = ms / 1000;
  }

  auto existing = api.Call(verb::get, Target(o.name, "/configuration"));
  Json result;
  if (!existing.ok() && existing.status().code() != Code::kNotFound) return existing.status();
  if (!existing.ok()) {
    if (o.handler.empty())
      return Status::InvalidArgument("--handler is required for a new function (e.g. app.handler)");
    Json create = config;
    create["FunctionName"] = o.name;
    create["Role"] = "arn:aws:iam::000000000000:role/gust";
    create["Code"] = {{"ZipFile", Base64Encode(zip)}};
    create["Publish"] = true;
    GUST_ASSIGN_OR_RETURN(result, api.CallJson(verb::post, kFunctions, create));
  } else {
    GUST_ASSIGN_OR_RETURN(Json updated,
                          api.CallJson(verb::put, Target(o.name, "/configuration"), config));
    (void)updated;
    GUST_ASSIGN_OR_RETURN(result,
                          api.CallJson(verb::put, Target(o.name, "/code"),
                                       {{"ZipFile", Base64Encode(zip)}, {"Publish", true}}));
  }
  if (o.concurrency >= 0) {
    GUST_ASSIGN_OR_RETURN(Json c, api.CallJson(verb::put,
                                               "/2017-10-31/functions/" +
                                                   http::PercentEncode(o.name) + "/concurrency",
                                               {{"ReservedConcurrentExecutions", o.concurrency}}));
    (void)c;
  }
  std::printf("deployed %s: version %s, code %s (%s), handler %s, %d MB, %d s timeout\n",
              o.name.c_str(), result.value("Version", "?").c_str(),
              HumanBytes(result.value("CodeSize", 0)).c_str(),
              result.value("CodeSha256", "").c_str(), result.value("Handler", "").c_str(),
              result.value("MemorySize", 0), result.value("Timeout", 0));
  return Status::Ok();
}

struct InvokeOptions {
  std::string name, payload, qualifier, function, project = ".";
  bool log = false, raw = false;
  bool async = false;
};

Status Invoke(ApiClient& api, const InvokeOptions& o, int& exit_code) {
  std::string payload = o.payload;
  if (!payload.empty() && payload[0] == '@') {
    GUST_ASSIGN_OR_RETURN(payload, ReadFile(payload.substr(1)));
  }
  if (o.async) {
    std::map<std::string, std::string> headers = {{"Content-Type", "application/json"},
                                                  {"X-Amz-Invocation-Type", "Event"}};
    std::string target = Target(o.name, "/invocations");
    if (!o.qualifier.empty()) target += "?Qualifier=" + http::PercentEncode(o.qualifier);
    GUST_ASSIGN_OR_RETURN(auto response, api.Call(verb::post, target, payload, headers));
    // 202: the event is on disk; it runs (and is retried) in the background.
    std::string id = response.Header("x-amzn-requestid");
    std::printf("%s\n", id.c_str());
    std::fprintf(stderr, "accepted (queued durably); `gust get-invocation %s` shows its outcome\n",
                 id.c_str());
    return Status::Ok();
  }
  return InvokeAndPrint(api, o.name, o.qualifier, payload, o.log, exit_code);
}

// The engine's own functions (a map job's code, kMapFunctionPrefix) are
// hidden unless `all`: they are not something the user deployed.
Status List(ApiClient& api, bool all) {
  std::string marker;
  int hidden = 0;
  std::printf("%-32s %-11s %7s %8s %10s  %s\n", "NAME", "RUNTIME", "MEMORY", "TIMEOUT", "CODE",
              "LAST MODIFIED");
  int count = 0;
  do {
    std::string target = kFunctions + "/?MaxItems=50";
    if (!marker.empty()) target += "&Marker=" + http::PercentEncode(marker);
    GUST_ASSIGN_OR_RETURN(Json page, api.CallJson(verb::get, target));
    for (const auto& f : page["Functions"]) {
      if (!all && f.value("FunctionName", "").rfind(engine::kMapFunctionPrefix, 0) == 0) {
        ++hidden;
        continue;
      }
      std::printf("%-32s %-11s %4d MB %6d s %10s  %s\n", f.value("FunctionName", "").c_str(),
                  f.value("Runtime", "").c_str(), f.value("MemorySize", 0), f.value("Timeout", 0),
                  HumanBytes(f.value("CodeSize", 0)).c_str(), f.value("LastModified", "").c_str());
      ++count;
    }
    marker = page.value("NextMarker", "");
  } while (!marker.empty());
  if (count == 0)
    std::printf("(no functions: deploy one with `gust deploy NAME DIR --handler mod.fn`)\n");
  if (hidden > 0)
    std::printf("(%d internal map function%s (%s*) not shown: `gust ls --all`)\n", hidden,
                hidden == 1 ? "" : "s", engine::kMapFunctionPrefix);
  return Status::Ok();
}

Status Info(ApiClient& api, const std::string& name) {
  GUST_ASSIGN_OR_RETURN(Json fn, api.CallJson(verb::get, Target(name)));
  GUST_ASSIGN_OR_RETURN(Json versions, api.CallJson(verb::get, Target(name, "/versions")));
  GUST_ASSIGN_OR_RETURN(Json aliases, api.CallJson(verb::get, Target(name, "/aliases")));
  const Json& c = fn["Configuration"];
  std::printf("name:          %s\narn:           %s\nruntime:       %s\nhandler:       %s\n",
              c.value("FunctionName", "").c_str(), c.value("FunctionArn", "").c_str(),
              c.value("Runtime", "").c_str(), c.value("Handler", "").c_str());
  std::printf(
      "memory:        %d MB\ntimeout:       %d s\n/tmp:          %d MB\nnetwork:       %s\n",
      c.value("MemorySize", 0), c.value("Timeout", 0),
      c.contains("EphemeralStorage") ? c["EphemeralStorage"].value("Size", 0) : 0,
      c.value("Network", false) ? "yes" : "no (own empty network namespace)");
  std::string python = c.value(api::kPythonField, "");
  std::printf("python:        %s\n", python.empty() ? "the engine's own" : python.c_str());
  std::string buckets;
  for (const auto& b : c.value(api::kBucketsField, Json::array())) {
    buckets += (buckets.empty() ? "" : ", ") + b.get<std::string>();
  }
  std::printf("buckets:       %s\n", buckets.empty() ? "none" : buckets.c_str());
  std::printf("code:          %s, sha256 %s\nlast modified: %s\n",
              HumanBytes(c.value("CodeSize", 0)).c_str(), c.value("CodeSha256", "").c_str(),
              c.value("LastModified", "").c_str());
  if (fn.contains("Concurrency"))
    std::printf("concurrency:   %d reserved\n",
                fn["Concurrency"].value("ReservedConcurrentExecutions", 0));
  if (c.contains("Environment")) {
    std::printf("environment:\n");
    for (auto& [k, v] : c["Environment"]["Variables"].items())
      std::printf("  %s=%s\n", k.c_str(), v.get<std::string>().c_str());
  }
  std::printf("versions:     ");
  for (const auto& v : versions["Versions"]) std::printf(" %s", v.value("Version", "").c_str());
  std::printf("\n");
  for (const auto& a : aliases["Aliases"])
    std::printf("alias:         %s -> %s\n", a.value("Name", "").c_str(),
                a.value("FunctionVersion", "").c_str());
  return Status::Ok();
}

// Entries "<epoch ms>\t<text>", or in a cluster "<epoch ms>\t<node>\t<text>" (labelled),
// printed as "<ISO time> [node] <text>"; keep sees the text alone.
void PrintLogText(const std::string& text, bool labelled,
                  const std::function<bool(std::string_view text)>& keep) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string_view entry = std::string_view(line).substr(tab + 1);
    std::string_view node;
    if (labelled) {
      auto node_end = entry.find('\t');
      if (node_end == std::string_view::npos) continue;
      node = entry.substr(0, node_end);
      entry = entry.substr(node_end + 1);
    }
    if (keep && !keep(entry)) continue;
    int64_t ts = std::strtoll(line.c_str(), nullptr, 10);
    if (labelled) {
      std::printf("%s [%.*s] %.*s\n", FormatIso8601(ts).c_str(), static_cast<int>(node.size()),
                  node.data(), static_cast<int>(entry.size()), entry.data());
    } else {
      std::printf("%s %.*s\n", FormatIso8601(ts).c_str(), static_cast<int>(entry.size()),
                  entry.data());
    }
  }
  std::fflush(stdout);
}

}  // namespace

std::string FunctionPath(const std::string& name, const std::string& suffix) {
  return kFunctions + "/" + http::PercentEncode(name) + suffix;
}

std::function<void()> WithClient(std::shared_ptr<CliState> state,
                                 std::function<Status(ApiClient&)> fn) {
  return [state, fn = std::move(fn)] {
    auto api = ApiClient::Connect(state->url);
    if (!api.ok()) {
      state->exit_code = Fail(api.status().message());
      return;
    }
    Status st = fn(**api);
    if (!st.ok()) state->exit_code = Fail(st.message());
  };
}

Status InvokeAndPrint(ApiClient& api, const std::string& name, const std::string& qualifier,
                      const std::string& payload, bool show_log, int& exit_code) {
  std::map<std::string, std::string> headers = {{"Content-Type", "application/json"}};
  if (show_log) headers["X-Amz-Log-Type"] = "Tail";
  std::string target = Target(name, "/invocations");
  if (!qualifier.empty()) target += "?Qualifier=" + http::PercentEncode(qualifier);
  GUST_ASSIGN_OR_RETURN(auto response, api.Call(verb::post, target, payload, headers));
  if (show_log) {
    auto log = Base64Decode(response.Header("x-amz-log-result"));
    if (log.ok()) std::fprintf(stderr, "%s", log->c_str());
  }
  std::printf("%s\n", response.body.c_str());
  if (!response.Header("x-amz-function-error").empty()) exit_code = 1;
  return Status::Ok();
}

Status PrintLogs(ApiClient& api, const std::string& name, const std::string& since, bool follow,
                 const std::function<bool(std::string_view text)>& keep) {
  int64_t since_ms = 0;
  if (!since.empty()) {
    int64_t ago = ParseDurationMs(since);
    if (ago < 0)
      return Status::InvalidArgument("--since '" + since + "' is not a duration (e.g. 10m, 1h)");
    since_ms = NowEpochMs() - ago;
  }
  // Embedded: a byte offset into the engine's file. A cluster answers a cursor over every
  // node's file (and names nodes it could not read, once per change, on stderr).
  uint64_t offset = 0;
  std::string cursor;
  std::string warned;
  for (;;) {
    std::string target = "/v1/functions/" + http::PercentEncode(name) +
                         "/logs?since=" + std::to_string(since_ms) +
                         "&offset=" + std::to_string(offset);
    if (!cursor.empty()) target += "&cursor=" + http::PercentEncode(cursor);
    GUST_ASSIGN_OR_RETURN(Json chunk, api.CallJson(verb::get, target));
    PrintLogText(JsonStringOr(chunk, "text", ""), JsonBoolOr(chunk, "node_labels", false), keep);
    std::string warnings;
    if (const Json* w = JsonFind(chunk, "warnings"); w != nullptr && w->is_array()) {
      for (const Json& one : *w) {
        if (one.is_string()) warnings += "warning: " + one.get<std::string>() + "\n";
      }
    }
    if (warnings != warned) std::fprintf(stderr, "%s", warnings.c_str());
    warned = std::move(warnings);
    bool more = false;
    if (const Json* c = JsonFind(chunk, "cursor"); c != nullptr && c->is_string()) {
      more = c->get<std::string>() != cursor;
      cursor = c->get<std::string>();
    } else {
      uint64_t next = static_cast<uint64_t>(
          std::max<int64_t>(0, JsonIntOr(chunk, "next_offset", static_cast<int64_t>(offset))));
      more = next != offset;
      offset = next;
    }
    if (more) continue;
    if (!follow) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void AddFunctionCommands(CLI::App& app, std::shared_ptr<CliState> state) {
  auto d = std::make_shared<DeployOptions>();
  auto* deploy = app.add_subcommand(
      "deploy", "Deploy a function from a directory, or a project stage (Zappa's deploy)");
  deploy->footer(
      "Forms:\n"
      "  gust deploy NAME PATH --handler mod.fn\n"
      "      create or update function NAME from a directory or .zip and publish a version\n"
      "  gust deploy [STAGE] [--project DIR]\n"
      "      package the project (its files + its virtualenv's packages) as the STAGE of its\n"
      "      gust_settings.json / zappa_settings.json says, create the stage's function, check\n"
      "      that the app imports, point the alias `live` at it and print its URL\n"
      "      (docs/WEB.md); `gust update STAGE` deploys changes");
  deploy->add_option("name", d->name,
                     "Function name, or a stage of the settings file (may be left out when the "
                     "file has only one stage)");
  deploy->add_option("path", d->path, "Directory or .zip with the code (not with a STAGE)");
  deploy->add_option("--project", d->project, "Project directory of a STAGE (default: .)")
      ->capture_default_str();
  deploy->add_option("--handler", d->handler,
                     "module.function called per invocation (required for a new function)");
  deploy->add_option("--runtime", d->runtime, "Runtime")->capture_default_str();
  deploy->add_option("--memory", d->memory,
                     "Memory limit in MB (from 128 up to the engine's `gust up --max-memory`, "
                     "the machine's by default; default 128)");
  deploy->add_option("--timeout", d->timeout,
                     "Timeout in seconds (from 1 up to the engine's `gust up --max-timeout`, 7 "
                     "days by default; default 3)");
  deploy->add_option("--concurrency", d->concurrency,
                     "Reserved concurrency (max simultaneous sandboxes)");
  deploy->add_option("--env", d->env, "Environment variable KEY=VALUE (repeatable)");
  deploy->add_option("--keep-alive", d->keep_alive,
                     "Idle time before its warm sandboxes go (e.g. 5m)");
  deploy->add_flag("--network", d->network, "Give the function network access (off by default)");
  deploy->add_option("--bucket", d->buckets,
                     "A bucket of the engine's object store the function may use from its "
                     "sandbox (boto3 on GUST_S3_ENDPOINT, gust.storage), NAME to read and "
                     "write, NAME:ro to read (repeatable; replaces the function's list; others "
                     "answer 403; docs/STORAGE.md, \"From a function\")");
  deploy->add_option("--python", d->python,
                     "Run the function in this Python environment: its interpreter, e.g. "
                     "venv/bin/python (made absolute, not resolved); \"\": the engine's own, "
                     "the default (docs/ENVIRONMENTS.md)");
  deploy->callback(WithClient(state, [d](ApiClient& api) {
    if (d->path.empty() && d->handler.empty()) return DeployStage(api, d->name, d->project);
    if (d->path.empty())
      return Status::InvalidArgument("gust deploy NAME PATH --handler mod.fn: PATH is missing");
    return Deploy(api, *d);
  }));

  auto inv = std::make_shared<InvokeOptions>();
  auto* invoke = app.add_subcommand(
      "invoke", "Invoke a function, or run a function of a stage's code (Zappa's invoke)");
  invoke->footer(
      "Forms:\n"
      "  gust invoke NAME [--payload JSON] [--qualifier Q] [--log]\n"
      "      invoke function NAME with an event and print its response\n"
      "  gust invoke STAGE mod.fn [--project DIR]\n"
      "      run mod.fn() in the stage's live code and print its result (its log on stderr)\n"
      "  gust invoke STAGE --raw 'print(1 + 1)'\n"
      "      run a line of Python there");
  invoke->add_option("name", inv->name, "Function name (or name:alias), or a stage")->required();
  invoke->add_option("function", inv->function, "With a STAGE: module.function to run");
  invoke->add_flag("--raw", inv->raw, "With a STAGE: FUNCTION is Python code to exec");
  invoke->add_option("--project", inv->project, "Project directory of a STAGE (default: .)")
      ->capture_default_str();
  invoke->add_option("--payload,-p", inv->payload, "JSON event, or @file to read it from a file");
  invoke->add_option("--qualifier,-q", inv->qualifier, "Version or alias");
  invoke->add_flag("--log,-l", inv->log, "Print the invocation's log (last 4 KB) to stderr");
  invoke->add_flag("--async", inv->async,
                   "Queue it (InvocationType Event): prints the request id once the event is "
                   "durable; retried twice on error, then dead-lettered (`gust dlq NAME`)");
  invoke->callback(WithClient(state, [inv, state](ApiClient& api) {
    if (!inv->function.empty()) {
      return InvokeStage(api, inv->name, inv->project, inv->function, inv->raw, state->exit_code);
    }
    if (inv->raw) return Status::InvalidArgument("--raw needs a STAGE and the code to run");
    return Invoke(api, *inv, state->exit_code);
  }));

  auto ls_all = std::make_shared<bool>(false);
  auto* ls = app.add_subcommand("ls", "List functions");
  ls->add_flag("--all,-a", *ls_all,
               "Also the engine's internal functions (gust-map-*: the code of map jobs)");
  ls->callback(WithClient(state, [ls_all](ApiClient& api) { return List(api, *ls_all); }));

  auto name = std::make_shared<std::string>();
  auto* info = app.add_subcommand("info", "Show a function's configuration, versions and aliases");
  info->add_option("name", *name, "Function name")->required();
  info->callback(WithClient(state, [name](ApiClient& api) { return Info(api, *name); }));

  auto rm_name = std::make_shared<std::string>();
  auto* rm = app.add_subcommand("rm", "Delete a function with all its versions and aliases");
  rm->add_option("name", *rm_name, "Function name")->required();
  rm->callback(WithClient(state, [rm_name](ApiClient& api) -> Status {
    GUST_ASSIGN_OR_RETURN(auto r, api.Call(verb::delete_, Target(*rm_name)));
    (void)r;
    std::printf("deleted %s\n", rm_name->c_str());
    return Status::Ok();
  }));

  auto pub = std::make_shared<std::pair<std::string, std::string>>();
  auto* publish = app.add_subcommand("publish", "Publish $LATEST as a new immutable version");
  publish->add_option("name", pub->first, "Function name")->required();
  publish->add_option("--description", pub->second, "Version description");
  publish->callback(WithClient(state, [pub](ApiClient& api) -> Status {
    GUST_ASSIGN_OR_RETURN(Json v, api.CallJson(verb::post, Target(pub->first, "/versions"),
                                               {{"Description", pub->second}}));
    std::printf("published %s version %s\n", pub->first.c_str(), v.value("Version", "?").c_str());
    return Status::Ok();
  }));

  auto lg = std::make_shared<std::tuple<std::string, std::string, bool>>();
  auto* logs = app.add_subcommand("logs", "Print a function's logs (START/END/REPORT and output)");
  logs->add_option("name", std::get<0>(*lg), "Function name")->required();
  logs->add_option("--since", std::get<1>(*lg), "Only entries newer than this (e.g. 10m, 2h)");
  logs->add_flag("--follow,-f", std::get<2>(*lg), "Keep printing new entries");
  logs->callback(WithClient(state, [lg](ApiClient& api) {
    return PrintLogs(api, std::get<0>(*lg), std::get<1>(*lg), std::get<2>(*lg));
  }));
}

}  // namespace gust::cli

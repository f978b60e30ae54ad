// Zappa's workflow on gust, the commands that look at a stage or start a
// project: status, tail, init.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/stage_common.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "http/router.h"

namespace gust::cli {

using verb = http::beast_http::verb;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kHttpLinePrefix = "[HTTP] ";  // written by the gateway (src/api/gateway.h)

std::string EnvOf(const Json& config, const std::string& key) {
  if (!config.contains("Environment")) return "";
  const Json& vars = config["Environment"].value("Variables", Json::object());
  return vars.contains(key) && vars[key].is_string() ? vars[key].get<std::string>() : "";
}

// The last 24 h split by the version each invocation ran (after `gust update`
// the new version's counts start at zero; an old version's errors stay its
// own). The import check's sandbox serves a new version's first request, so
// that request is warm: its cold start was the check's, printed by deploy.
Status PrintPerVersion(ApiClient& api, const std::string& fn, int64_t since,
                       const std::optional<std::string>& live) {
  GUST_ASSIGN_OR_RETURN(
      Json records,
      api.CallJson(verb::get, "/v1/invocations?function=" + http::PercentEncode(fn) +
                                  "&since=" + std::to_string(since) + "&limit=100000"));
  struct Counts {
    int64_t invocations = 0, errors = 0, cold = 0;
  };
  std::map<std::string, Counts> by_version;
  const Json* invocations = JsonFind(records, "invocations");
  for (const Json& r : invocations && invocations->is_array() ? *invocations : Json::array()) {
    Counts& c = by_version[JsonStringOr(r, "version", "?")];
    c.invocations += 1;
    c.errors += JsonStringOr(r, "outcome", "") != "Success";
    c.cold += JsonBoolOr(r, "cold", false);
  }
  std::vector<std::pair<std::string, Counts>> rows(by_version.begin(), by_version.end());
  // Newest version first: "$LATEST" first, then numbers descending.
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    auto key = [](const std::string& v) {
      return v == "$LATEST" ? INT64_MAX : std::strtoll(v.c_str(), nullptr, 10);
    };
    return key(a.first) > key(b.first);
  });
  for (const auto& [version, c] : rows) {
    std::printf("  version %-6s %lld invocations, %lld errors, %lld cold starts%s\n",
                version.c_str(), static_cast<long long>(c.invocations),
                static_cast<long long>(c.errors), static_cast<long long>(c.cold),
                live && *live == version ? " (live)" : "");
  }
  return Status::Ok();
}

}  // namespace

Status ShowStageStatus(ApiClient& api, const std::string& stage, const std::string& project) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  GUST_RETURN_IF_ERROR(RequireDeployed(api, s));
  const std::string& fn = s.function_name;
  GUST_ASSIGN_OR_RETURN(std::optional<std::string> live, LiveVersion(api, fn));
  std::string qualifier = live ? "?Qualifier=" + *live : "";
  GUST_ASSIGN_OR_RETURN(Json function, api.CallJson(verb::get, FunctionPath(fn) + qualifier));
  GUST_ASSIGN_OR_RETURN(Json versions, api.CallJson(verb::get, FunctionPath(fn, "/versions")));
  int64_t since = NowEpochMs() - 24 * 3600 * 1000;
  GUST_ASSIGN_OR_RETURN(Json stats,
                        api.CallJson(verb::get, "/v1/functions/" + http::PercentEncode(fn) +
                                                    "/stats?since=" + std::to_string(since)));
  GUST_ASSIGN_OR_RETURN(Json sandboxes, api.CallJson(verb::get, "/v1/sandboxes"));

  const Json& c = function["Configuration"];
  std::string app = EnvOf(c, "GUST_APP_FUNCTION");
  std::string handler = EnvOf(c, "GUST_LAMBDA_HANDLER");
  std::printf("stage:          %s (%s)\n", s.stage.c_str(),
              fs::path(s.source_file).filename().c_str());
  std::printf("function:       %s\n", fn.c_str());
  if (app.empty() && handler.empty()) {
    std::printf("URL:            none (an event-only project: no app_function)\n");
  } else {
    std::printf("URL:            %s\n", PathUrl(api.url(), fn).c_str());
    if (std::string host = HostUrl(api.url(), fn); !host.empty() && handler.empty())
      std::printf("                %s\n", host.c_str());
  }
  if (!app.empty()) {
    std::printf("app:            %s (WSGI)\n", app.c_str());
  } else if (!handler.empty()) {
    std::printf("handler:        %s (API Gateway v2.0 events)\n", handler.c_str());
  } else {
    std::printf("handler:        %s\n", c.value("Handler", "").c_str());
  }
  std::string kept;
  for (const auto& v : versions["Versions"]) {
    std::string n = v.value("Version", "");
    if (n != "$LATEST") kept += (kept.empty() ? "" : " ") + n;
  }
  std::printf("live version:   %s\n", live ? live->c_str() : "none ($LATEST serves)");
  std::printf("versions kept:  %s\n", kept.empty() ? "none" : kept.c_str());
  std::printf("memory:         %d MB\n", c.value("MemorySize", 0));
  std::printf("timeout:        %d s\n", c.value("Timeout", 0));
  if (function.contains("Concurrency")) {
    std::printf("concurrency:    %d reserved\n",
                function["Concurrency"].value("ReservedConcurrentExecutions", 0));
  }
  int busy = 0, idle = 0;
  for (const auto& sb : sandboxes["sandboxes"]) {
    if (sb.value("function", "") != fn) continue;
    (sb.value("state", "") == "idle" ? idle : busy) += 1;
  }
  std::printf("sandboxes:      %d (%d idle, %d busy or starting)%s\n", busy + idle, idle, busy,
              busy + idle == 0 ? ": scaled to zero" : "");
  int64_t n = stats.value("invocations", int64_t{0});
  std::printf("last 24 h:      %lld invocations, %lld errors, %lld cold starts",
              static_cast<long long>(n), static_cast<long long>(stats.value("errors", int64_t{0})),
              static_cast<long long>(stats.value("cold_starts", int64_t{0})));
  if (n > 0) {
    std::printf(", latency p50 %.2f ms, p99 %.2f ms", stats.value("p50_ms", 0.0),
                stats.value("p99_ms", 0.0));
  }
  std::printf("\n");
  if (n > 0) GUST_RETURN_IF_ERROR(PrintPerVersion(api, fn, since, live));
  if (int64_t last = stats.value("last_start_ms", int64_t{0}); last > 0) {
    std::printf("last request:   %s\n", FormatIso8601(last).c_str());
  }
  return Status::Ok();
}

Status TailStage(ApiClient& api, const std::string& stage, const std::string& project,
                 const std::string& since, const std::string& filter, bool http_only,
                 bool non_http_only, bool follow) {
  GUST_ASSIGN_OR_RETURN(StageSettings s, LoadStageVerbose(project, stage));
  GUST_RETURN_IF_ERROR(RequireDeployed(api, s));
  auto keep = [&](std::string_view text) {
    bool is_http = text.rfind(kHttpLinePrefix, 0) == 0;
    if ((http_only && !is_http) || (non_http_only && is_http)) return false;
    return filter.empty() || text.find(filter) != std::string_view::npos;
  };
  return PrintLogs(api, s.function_name, since, follow, keep);
}

// ---------------------------------------------------------------- init

namespace {

// "module.var" of the first `var = Flask(...)` in the project's top-level modules.
std::string DetectFlaskApp(const fs::path& project) {
  std::vector<fs::path> modules;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(project, ec)) {
    if (de.is_regular_file() && de.path().extension() == ".py") modules.push_back(de.path());
  }
  std::sort(modules.begin(), modules.end());
  // app.py first: the name Zappa and Flask's docs use.
  std::stable_partition(modules.begin(), modules.end(),
                        [](const fs::path& p) { return p.filename() == "app.py"; });
  for (const auto& path : modules) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      size_t flask = line.find("Flask(");
      size_t eq = line.find('=');
      if (flask == std::string::npos || eq == std::string::npos || eq > flask) continue;
      std::string var = line.substr(0, eq);
      var.erase(std::remove_if(var.begin(), var.end(), [](char c) { return std::isspace(c); }),
                var.end());
      bool ident = !var.empty() && !std::isdigit(static_cast<unsigned char>(var[0])) &&
                   std::all_of(var.begin(), var.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                   });
      if (ident) return path.stem().string() + "." + var;
    }
  }
  return "";
}

// Asks on stdout, reads a line from stdin; the default on an empty line, EOF or --yes.
std::string Ask(const std::string& question, const std::string& fallback, bool yes) {
  if (yes) return fallback;
  std::printf("%s [%s]: ", question.c_str(), fallback.c_str());
  std::fflush(stdout);
  std::string line;
  if (!std::getline(std::cin, line)) {
    std::printf("\n");
    return fallback;
  }
  auto begin = line.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return fallback;
  return line.substr(begin, line.find_last_not_of(" \t\r") - begin + 1);
}

}  // namespace

Status InitProject(const std::string& project_dir, bool yes) {
  std::error_code ec;
  fs::path project = fs::weakly_canonical(project_dir, ec);
  if (ec || !fs::is_directory(project))
    return Status::NotFound("project directory " + project_dir + " does not exist");
  if (auto existing = FindSettingsFile(project.string()); existing.ok()) {
    return Status::Conflict(*existing + " already exists: edit it, or delete it to start over");
  }
  std::string detected = DetectFlaskApp(project);
  if (!yes) {
    std::printf(
        "Welcome to gust: serverless web apps on your own machine.\n"
        "This writes gust_settings.json for %s. Press Enter to take a [default].\n\n",
        project.c_str());
    if (!detected.empty()) std::printf("Found a Flask app: %s\n", detected.c_str());
  }
  fs::path file = project / "gust_settings.json";
  // Each answer is checked by parsing the settings it produces; a bad one is asked again.
  using OrderedJson = nlohmann::ordered_json;  // the file keeps the order it is asked in
  OrderedJson stage_doc;
  std::string stage = "dev";
  Status last = Status::Ok();
  for (int attempt = 0; attempt < 3; ++attempt) {
    stage = Ask("Stage name (a stage is one deployment: dev, prod...)", "dev", yes);
    std::string app =
        Ask("Your WSGI app, as module.variable", detected.empty() ? "app.app" : detected, yes);
    std::string name = Ask("Project name (functions are named <project>-<stage>)",
                           project.filename().string(), yes);
    std::string memory = Ask("Memory per sandbox in MB", "512", yes);
    std::string timeout = Ask("Timeout per request in seconds", "30", yes);
    OrderedJson settings = OrderedJson::object();
    settings["app_function"] = app;
    settings["project_name"] = name;
    auto as_int = [](const std::string& text) -> OrderedJson {
      char* end = nullptr;
      long v = std::strtol(text.c_str(), &end, 10);
      return end && *end == '\0' && !text.empty() ? OrderedJson(v) : OrderedJson(text);
    };
    settings["memory_size"] = as_int(memory);
    settings["timeout_seconds"] = as_int(timeout);
    settings["keep_warm"] = false;
    settings["exclude"] = OrderedJson::array({"*.ipynb", "tests/*"});
    stage_doc = OrderedJson::object();
    stage_doc[stage] = settings;
    auto parsed = ParseStage(stage_doc.dump(), file.string(), stage, project.string());
    if (parsed.ok()) {
      last = Status::Ok();
      break;
    }
    last = parsed.status();
    if (yes) break;
    std::printf("\n%s\nLet's try again.\n\n", last.message().c_str());
  }
  GUST_RETURN_IF_ERROR(last);
  std::string text = stage_doc.dump(4) + "\n";
  std::ofstream out(file);
  out << text;
  out.close();
  if (!out) return Status::IoError("cannot write " + file.string());
  std::printf("wrote %s:\n%s\nNext: `gust deploy %s` (with an engine running: `gust up -d`)\n",
              file.c_str(), text.c_str(), stage.c_str());
  return Status::Ok();
}

}  // namespace gust::cli

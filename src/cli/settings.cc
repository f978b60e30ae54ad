#include "cli/settings.h"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/config.h"

namespace gust::cli {

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kGustFile = "gust_settings.json";
constexpr const char* kZappaFile = "zappa_settings.json";
// Searched in this order: gust's files first, each kind as JSON, YAML, TOML
// (Zappa reads all three).
constexpr const char* kSettingsFiles[] = {
    "gust_settings.json",  "gust_settings.yaml",  "gust_settings.yml",  "gust_settings.toml",
    "zappa_settings.json", "zappa_settings.yaml", "zappa_settings.yml", "zappa_settings.toml"};

// YAML and TOML settings become JSON through the system Python (python3-yaml,
// tomllib): one parser for every format, and no C++ YAML/TOML dependency.
Result<std::string> ToJson(const std::string& file) {
  std::string ext = std::filesystem::path(file).extension().string();
  if (ext == ".json") {
    std::ifstream in(file, std::ios::binary);
    if (!in) return Status::IoError("cannot read " + file);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
  }
  const char* script =
      ext == ".toml"
          ? "import json,sys,tomllib\nwith open(sys.argv[1],'rb') as f: json.dump(tomllib.load(f),"
            "sys.stdout)"
          : "import json,sys,yaml\nwith open(sys.argv[1]) as f: json.dump(yaml.safe_load(f),"
            "sys.stdout)";
  int out[2];
  if (::pipe(out) != 0) return Status::IoError("pipe: " + std::string(std::strerror(errno)));
  pid_t pid = ::fork();
  if (pid < 0) return Status::IoError("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    ::execl("/usr/bin/python3", "python3", "-I", "-c", script, file.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::InvalidArgument(file + " could not be read as " +
                                   (ext == ".toml" ? "TOML" : "YAML (needs python3-yaml)") +
                                   ": see the error above");
  }
  return text;
}

// Keys of Zappa's that have no meaning on gust: accepted, with a notice.
const std::set<std::string>& IgnoredZappaKeys() {
  static const std::set<std::string> keys = {"slim_handler",
                                             "aws_region",
                                             "s3_bucket",
                                             "profile_name",
                                             "role_name",
                                             "role_arn",
                                             "manage_roles",
                                             "apigateway_enabled",
                                             "certificate_arn",
                                             "domain",
                                             "route53_enabled",
                                             "cloudwatch_log_level",
                                             "xray_tracing",
                                             "vpc_config",
                                             "lambda_description",
                                             "tags",
                                             "api_key_required",
                                             "cors",
                                             "binary_support",
                                             "use_precompiled_packages",
                                             "touch",
                                             "touch_path",
                                             "delete_local_zip",
                                             "delete_s3_zip",
                                             "log_level",
                                             "architecture",
                                             "ephemeral_storage",
                                             "endpoint_configuration",
                                             "aws_environment_variables",
                                             "cloudwatch_data_trace",
                                             "cloudwatch_metrics_enabled"};
  return keys;
}

Status Bad(const std::string& file, const std::string& stage, const std::string& key,
           const std::string& problem) {
  return Status::InvalidArgument(file + ": stage '" + stage + "': " + key + ": " + problem);
}

// "module.attr" with identifier-ish parts.
bool IsDottedName(const std::string& s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string::npos)
    return false;
  if (s.find('.') == std::string::npos) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  }
  return true;
}

// Merges a stage with the stages it extends (theirs first, its own keys win).
Result<Json> ResolveExtends(const Json& doc, const std::string& file, const std::string& stage) {
  std::vector<std::string> chain;
  std::string current = stage;
  while (true) {
    for (const auto& seen : chain) {
      if (seen == current)
        return Status::InvalidArgument(file + ": stage '" + stage +
                                       "': \"extends\" loops back to '" + current + "'");
    }
    if (!doc.contains(current)) {
      if (chain.empty()) {
        std::string names;
        for (auto it = doc.begin(); it != doc.end(); ++it)
          names += (names.empty() ? "" : ", ") + it.key();
        return Status::NotFound(file + " has no stage '" + stage +
                                "' (stages: " + (names.empty() ? "none" : names) + ")");
      }
      return Status::InvalidArgument(file + ": stage '" + chain.back() + "' extends '" + current +
                                     "', which does not exist");
    }
    if (!doc[current].is_object())
      return Status::InvalidArgument(file + ": stage '" + current + "' must be a JSON object");
    chain.push_back(current);
    const Json& node = doc[current];
    if (!node.contains("extends")) break;
    if (!node["extends"].is_string())
      return Bad(file, current, "extends", "must be the name of another stage");
    current = node["extends"].get<std::string>();
  }
  Json merged = Json::object();
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    for (const auto& [key, value] : doc[*it].items()) merged[key] = value;
  }
  merged.erase("extends");
  return merged;
}

Result<int> IntKey(const Json& v, const std::string& file, const std::string& stage,
                   const std::string& key, int lo, int hi) {
  if (!v.is_number_integer())
    return Bad(file, stage, key, "must be a whole number, got " + v.dump());
  int64_t n = v.get<int64_t>();
  if (n < lo || n > hi)
    return Bad(
        file, stage, key,
        std::to_string(n) + " is out of range " + std::to_string(lo) + "-" + std::to_string(hi));
  return static_cast<int>(n);
}

Result<bool> BoolKey(const Json& v, const std::string& file, const std::string& stage,
                     const std::string& key) {
  if (!v.is_boolean()) return Bad(file, stage, key, "must be true or false, got " + v.dump());
  return v.get<bool>();
}

Result<std::string> StringKey(const Json& v, const std::string& file, const std::string& stage,
                              const std::string& key) {
  if (!v.is_string()) return Bad(file, stage, key, "must be a string, got " + v.dump());
  return v.get<std::string>();
}

Status ParseEvents(const Json& v, const std::string& file, const std::string& stage,
                   StageSettings& out) {
  if (!v.is_array()) return Bad(file, stage, "events", "must be a list of {function, expression}");
  for (size_t i = 0; i < v.size(); ++i) {
    const Json& e = v[i];
    std::string where = "events[" + std::to_string(i) + "]";
    if (!e.is_object()) return Bad(file, stage, where, "must be an object");
    ScheduledEvent ev;
    for (const auto& [key, value] : e.items()) {
      if (key == "function") {
        GUST_ASSIGN_OR_RETURN(ev.function, StringKey(value, file, stage, where + ".function"));
      } else if (key == "expression") {
        GUST_ASSIGN_OR_RETURN(ev.expression, StringKey(value, file, stage, where + ".expression"));
      } else if (key == "name") {
        GUST_ASSIGN_OR_RETURN(ev.name, StringKey(value, file, stage, where + ".name"));
      } else if (key == "enabled") {
        GUST_ASSIGN_OR_RETURN(ev.enabled, BoolKey(value, file, stage, where + ".enabled"));
      } else if (key == "description" || key == "event_source" || key == "kwargs") {
        out.warnings.push_back(where + "." + key + " is not supported by gust and is ignored");
      } else {
        out.warnings.push_back("unknown key " + where + "." + key + " (ignored)");
      }
    }
    if (!IsDottedName(ev.function))
      return Bad(file, stage, where + ".function",
                 "must be \"module.function\", got \"" + ev.function + "\"");
    if (ev.expression.empty())
      return Bad(file, stage, where + ".expression", "is required (rate(...) or cron(...))");
    out.events.push_back(std::move(ev));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> FindSettingsFile(const std::string& project_dir) {
  namespace fs = std::filesystem;
  for (const char* name : kSettingsFiles) {
    fs::path p = fs::path(project_dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return Status::NotFound(std::string("no ") + kGustFile + " (or .yaml/.toml) or " + kZappaFile +
                          " in " + project_dir + " (run `gust init` to write one)");
}

std::string PythonSetting(const std::string& path, const std::string& base_dir) {
  if (path.empty()) return "";
  std::error_code ec;
  std::filesystem::path base = std::filesystem::absolute(base_dir, ec);
  if (ec) base = base_dir;
  return (base / path).lexically_normal().string();  // an absolute path replaces base
}

Result<std::vector<std::string>> ListStages(const std::string& text, const std::string& file) {
  Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return Status::InvalidArgument(file + " is not a JSON object of stages");
  std::vector<std::string> stages;
  for (auto it = doc.begin(); it != doc.end(); ++it) stages.push_back(it.key());
  return stages;
}

Result<StageSettings> ParseStage(const std::string& text, const std::string& file,
                                 const std::string& stage, const std::string& project_dir) {
  Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded()) return Status::InvalidArgument(file + " is not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument(file + " must be a JSON object of stages");
  GUST_ASSIGN_OR_RETURN(Json merged, ResolveExtends(doc, file, stage));

  StageSettings s;
  s.stage = stage;
  s.source_file = file;
  s.from_zappa = std::filesystem::path(file).stem() == "zappa_settings";
  s.keep_warm = s.from_zappa;  // Zappa's default; gust's is scale to zero
  // A Zappa app has the internet on Lambda and is written for it (it calls
  // APIs, posts tweets); a gust file starts closed, least privilege.
  s.network = s.from_zappa;
  std::error_code ec;
  auto abs = std::filesystem::weakly_canonical(project_dir, ec);
  s.project_name = (ec ? std::filesystem::path(project_dir) : abs).filename().string();

  for (const auto& [key, value] : merged.items()) {
    if (key == "app_function") {
      GUST_ASSIGN_OR_RETURN(s.app_function, StringKey(value, file, stage, key));
      if (!IsDottedName(s.app_function))
        return Bad(file, stage, key,
                   "must be \"module.app\" (e.g. \"app.app\"), got \"" + s.app_function + "\"");
    } else if (key == "lambda_handler") {
      GUST_ASSIGN_OR_RETURN(s.lambda_handler, StringKey(value, file, stage, key));
      if (!IsDottedName(s.lambda_handler))
        return Bad(file, stage, key,
                   "must be \"module.function\", got \"" + s.lambda_handler + "\"");
    } else if (key == "project_name") {
      GUST_ASSIGN_OR_RETURN(s.project_name, StringKey(value, file, stage, key));
    } else if (key == "memory_size") {
      // Up to any engine's ceiling: the engine deployed to checks its own and
      // names it (`gust up --max-memory/--max-timeout`).
      GUST_ASSIGN_OR_RETURN(s.memory_mb,
                            IntKey(value, file, stage, key, kMinMemoryMb, kHardMaxMemoryMb));
    } else if (key == "timeout_seconds") {
      GUST_ASSIGN_OR_RETURN(s.timeout_s, IntKey(value, file, stage, key, 1, kHardMaxTimeoutS));
    } else if (key == "concurrency") {
      GUST_ASSIGN_OR_RETURN(int c, IntKey(value, file, stage, key, 1, 1000));
      s.concurrency = c;
    } else if (key == "keep_alive") {
      GUST_ASSIGN_OR_RETURN(int k, IntKey(value, file, stage, key, 0, 86400));
      s.keep_alive_s = k;
    } else if (key == "network") {
      GUST_ASSIGN_OR_RETURN(s.network, BoolKey(value, file, stage, key));
    } else if (key == "runtime") {
      GUST_ASSIGN_OR_RETURN(s.runtime, StringKey(value, file, stage, key));
      if (s.runtime != "python3.11") {
        s.warnings.push_back("runtime \"" + s.runtime + "\": gust runs python3.11; using it");
        s.runtime = "python3.11";
      }
    } else if (key == "environment_variables") {
      if (!value.is_object())
        return Bad(file, stage, key, "must be an object of NAME: \"value\" strings");
      for (const auto& [name, v] : value.items()) {
        if (!v.is_string())
          return Bad(file, stage, key + "." + name, "must be a string, got " + v.dump());
        s.environment[name] = v.get<std::string>();
      }
    } else if (key == "keep_warm") {
      GUST_ASSIGN_OR_RETURN(s.keep_warm, BoolKey(value, file, stage, key));
    } else if (key == "keep_warm_expression") {
      GUST_ASSIGN_OR_RETURN(s.keep_warm_expression, StringKey(value, file, stage, key));
    } else if (key == "events") {
      GUST_RETURN_IF_ERROR(ParseEvents(value, file, stage, s));
    } else if (key == "exclude") {
      if (!value.is_array()) return Bad(file, stage, key, "must be a list of glob patterns");
      for (const auto& p : value) {
        if (!p.is_string())
          return Bad(file, stage, key, "patterns must be strings, got " + p.dump());
        s.exclude.push_back(p.get<std::string>());
      }
    } else if (key == "venv") {
      GUST_ASSIGN_OR_RETURN(s.venv, StringKey(value, file, stage, key));
    } else if (key == "python") {
      GUST_ASSIGN_OR_RETURN(s.python, StringKey(value, file, stage, key));
      s.python = PythonSetting(s.python, project_dir);
    } else if (key == "authorization") {
      GUST_ASSIGN_OR_RETURN(s.authorization, StringKey(value, file, stage, key));
      if (s.authorization != "none" && s.authorization != "sigv4")
        return Bad(file, stage, key,
                   "must be \"none\" (public, the default) or \"sigv4\" (requests signed with "
                   "the engine's credentials), got \"" +
                       s.authorization + "\"");
    } else if (IgnoredZappaKeys().count(key)) {
      s.warnings.push_back("\"" + key +
                           "\" is a Zappa/AWS setting with no meaning on gust: ignored");
    } else {
      s.warnings.push_back("unknown setting \"" + key + "\" in stage '" + stage + "' (ignored)");
    }
  }

  // An event-only project (Zappa deploys a cron bot with no app_function) has
  // no web route: its events name the functions to run.
  if (s.app_function.empty() && s.lambda_handler.empty() && s.events.empty())
    return Bad(file, stage, "app_function",
               "is required (\"module.app\" for a WSGI app, or lambda_handler for a plain "
               "handler, or events for a project of scheduled functions only)");
  if (!s.app_function.empty() && !s.lambda_handler.empty())
    return Bad(file, stage, "lambda_handler", "give app_function or lambda_handler, not both");
  s.function_name = s.project_name + "-" + stage;
  for (char c : s.function_name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return Bad(file, stage, "project_name",
                 "\"" + s.function_name +
                     "\" is not a valid function name (letters, digits, - and _ only)");
  }
  if (s.function_name.size() > 64)
    return Bad(file, stage, "project_name", "\"" + s.function_name + "\" is over 64 characters");
  return s;
}

Result<StageSettings> LoadStage(const std::string& project_dir, const std::string& stage) {
  GUST_ASSIGN_OR_RETURN(std::string file, FindSettingsFile(project_dir));
  GUST_ASSIGN_OR_RETURN(std::string text, ToJson(file));
  if (!stage.empty()) return ParseStage(text, file, stage, project_dir);
  // No stage named: the only one, as Zappa does; with several, the one wording
  // every stage command uses to ask which.
  GUST_ASSIGN_OR_RETURN(std::vector<std::string> stages, ListStages(text, file));
  if (stages.size() == 1) return ParseStage(text, file, stages[0], project_dir);
  std::string names;
  for (const auto& n : stages) names += (names.empty() ? "" : ", ") + n;
  return Status::InvalidArgument("which stage? " + file + " has " +
                                 (stages.empty() ? "none" : names) +
                                 ": name one after the command (e.g. `gust status " +
                                 (stages.empty() ? "dev" : stages[0]) + "`)");
}

}  // namespace gust::cli

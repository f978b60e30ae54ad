// Project settings for the Zappa-style workflow (`gust init/deploy/update/
// schedule STAGE ...`): a file of stages, `gust_settings.json`, or a
// `zappa_settings.json` read as-is when no gust file exists. Either may be
// YAML (.yaml/.yml) or TOML (.toml) instead, as Zappa allows; those are turned
// into JSON by the system Python (python3-yaml, tomllib) and read the same way.
//
//   {"dev": {"app_function": "app.app", "memory_size": 256, ...},
//    "prod": {"extends": "dev", "memory_size": 1024}}
//
// LoadStage resolves one stage (following "extends" chains, Zappa's name for
// inheritance), applies defaults, validates every value and collects warnings
// for keys it does not know (named, never silently dropped) and for Zappa keys
// that mean nothing on gust (slim_handler, aws_region, ...: "ignored").
//
// Defaults differ by file kind where a Zappa project expects Lambda's: keep_warm
// is true in a zappa file without the key (as Zappa does) and false in a gust
// file (scale to zero); network is true in a zappa file (a Lambda function has
// the internet) and false in a gust file (least privilege).
//
// Thread-safety: pure functions over values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gust::cli {

struct ScheduledEvent {
  std::string function;    // "module.fn" inside the project
  std::string expression;  // rate(...) or cron(...), checked by the engine
  std::string name;        // "" -> derived from function
  bool enabled = true;
};

struct StageSettings {
  std::string stage;
  std::string source_file;     // the file it came from
  bool from_zappa = false;     // zappa_settings.json
  std::string project_name;    // default: the project directory's name
  std::string function_name;   // "<project_name>-<stage>": the Lambda function behind the stage
  std::string app_function;    // "module.app" (a WSGI app); "" if lambda_handler is used
  std::string lambda_handler;  // "module.fn" for a plain (non-WSGI) handler
  int memory_mb = 512;
  int timeout_s = 30;
  std::optional<int> concurrency;
  std::optional<int> keep_alive_s;
  bool network = false;  // true by default in a zappa file (above)
  std::string runtime = "python3.11";
  std::map<std::string, std::string> environment;
  bool keep_warm = false;
  std::string keep_warm_expression = "rate(4 minutes)";
  std::vector<ScheduledEvent> events;
  std::vector<std::string> exclude;  // glob patterns, relative to the project directory
  std::string venv;                  // "" -> $VIRTUAL_ENV, else ./venv or ./.venv if present
  // "python": the environment the stage's function runs in (its interpreter,
  // made absolute against the project directory); "" the engine's own.
  std::string python;
  // Who may call the web app: "none" (anyone, like API Gateway's default) or
  // "sigv4" (requests signed with the engine's credentials; gateway.h).
  std::string authorization = "none";
  std::vector<std::string> warnings;
};

// A Python environment's interpreter as `gust deploy --python` and a stage's
// "python" name it: "" stays "" (the engine's own); a relative path is made
// absolute against base_dir, lexically (a venv's bin/python is a symlink to
// its base interpreter: resolving it would lose the venv).
std::string PythonSetting(const std::string& path, const std::string& base_dir);

// The settings file of a project directory: gust_settings.{json,yaml,yml,toml},
// else zappa_settings.{...}; NotFound naming them if none exists.
Result<std::string> FindSettingsFile(const std::string& project_dir);

// Parses `text` (the file's contents; `file` only names it in messages) and
// resolves `stage`. InvalidArgument names the stage, key and problem.
Result<StageSettings> ParseStage(const std::string& text, const std::string& file,
                                 const std::string& stage, const std::string& project_dir);

// FindSettingsFile + read + ParseStage. An empty `stage` means the file's only
// stage; with several (or none) InvalidArgument lists them ("which stage? ...").
Result<StageSettings> LoadStage(const std::string& project_dir, const std::string& stage);

// The stage names in a settings file, in file order.
Result<std::vector<std::string>> ListStages(const std::string& text, const std::string& file);

}  // namespace gust::cli

// What the stage commands (cli_stage.cc, cli_stage_info.cc) share: loading a
// stage's settings with its notices printed, the stage function's
// configuration, its URLs, and the calls every one of them makes.
//
// Thread-safety: used by one command on one thread.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "cli/api_client.h"
#include "cli/settings.h"
#include "common/status.h"

namespace gust::cli {

// The stage adapter every stage function runs, and the alias traffic goes to.
inline constexpr const char* kStageHandler = "gust_runtime.stage.handler";
inline constexpr const char* kLiveAlias = "live";
// Carries the stage's "authorization" to the gateway (api/gateway.h's kWebAuthorizationEnv).
inline constexpr const char* kWebAuthorizationEnv = "GUST_WEB_AUTHORIZATION";

// The help of every stage command's STAGE argument: optional when the settings
// file has one stage (as Zappa's), else LoadStage's "which stage?" lists them.
inline constexpr const char* kStageArgumentHelp =
    "Stage of the settings file (e.g. dev); may be left out when the file has only one";

// LoadStage, with "reading <file>" and each settings warning on stderr.
Result<StageSettings> LoadStageVerbose(const std::string& project_dir, const std::string& stage);

// The Lambda configuration of a stage function: the adapter as Handler and
// the app in GUST_APP_FUNCTION / GUST_LAMBDA_HANDLER, beside the user's env.
nlohmann::json StageFunctionConfig(const StageSettings& s);

// "http://127.0.0.1:7700/web/<fn>/" and, for a loopback engine, "http://<fn>.localhost:7700/".
std::string PathUrl(const std::string& engine_url, const std::string& function);
std::string HostUrl(const std::string& engine_url, const std::string& function);

// The version the live alias points at; nullopt if the function has no such alias.
// NotFound if the function does not exist.
Result<std::optional<std::string>> LiveVersion(ApiClient& api, const std::string& function);

// A stage that must be deployed already: NotFound says how to deploy it.
Status RequireDeployed(ApiClient& api, const StageSettings& s);

// cli_stage_info.cc: `gust status STAGE`, `gust tail STAGE`, `gust init`.
Status ShowStageStatus(ApiClient& api, const std::string& stage, const std::string& project_dir);
Status TailStage(ApiClient& api, const std::string& stage, const std::string& project_dir,
                 const std::string& since, const std::string& filter, bool http_only,
                 bool non_http_only, bool follow);
Status InitProject(const std::string& project_dir, bool yes);

}  // namespace gust::cli

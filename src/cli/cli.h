// The `gust` command line (CLI11). RunCli parses argv and runs one command;
// it returns the process exit code: 0 success, 1 the function failed
// (invoke), 2 a usage or API error, 3 the engine could not start.
//
// Each command group registers itself on the app (AddEngineCommands,
// AddFunctionCommands, AddEventCommands) so files stay small and the help reads as one tool.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http/sigv4.h"

namespace gust::cli {

int RunCli(int argc, char** argv);

// Exit code of the selected subcommand, set by its callback.
struct CliState {
  int exit_code = 0;
  std::string url;  // --url, else GUST_URL, else the default
};

void AddEngineCommands(CLI::App& app, std::shared_ptr<CliState> state);
void AddFunctionCommands(CLI::App& app, std::shared_ptr<CliState> state);
void AddEventCommands(CLI::App& app, std::shared_ptr<CliState> state);
// Zappa's workflow over a project's settings file: init, update, rollback,
// undeploy, status, tail, package (cli_stage*.cc). `deploy STAGE` and
// `invoke STAGE mod.fn` are forms of the function commands (DeployStage, InvokeStage).
void AddStageCommands(CLI::App& app, std::shared_ptr<CliState> state);
// `gust auth init` (cli_auth.cc).
void AddAuthCommands(CLI::App& app, std::shared_ptr<CliState> state);
// `gust cluster init` and `gust cluster status` (cli_cluster.cc; docs/CLUSTER.md).
void AddClusterCommands(CLI::App& app, std::shared_ptr<CliState> state);

class ApiClient;

// --- helpers shared by the command files ---

// "/2015-03-31/functions/<name><suffix>"
std::string FunctionPath(const std::string& name, const std::string& suffix = "");
// A command callback: connects to state->url, runs fn; a failed Status is
// printed as "gust: <message>" and the exit code becomes 2.
std::function<void()> WithClient(std::shared_ptr<CliState> state,
                                 std::function<Status(ApiClient&)> fn);
// Prints a function's log entries newer than `since` ("" = all, else a
// duration like 10m), and with follow keeps polling for new ones; only the
// lines whose text (after the timestamp) passes `keep` are printed.
Status PrintLogs(ApiClient& api, const std::string& name, const std::string& since, bool follow,
                 const std::function<bool(std::string_view text)>& keep = nullptr);
// Invokes and prints the result (and the log tail to stderr with show_log);
// exit_code becomes 1 when the function failed.
Status InvokeAndPrint(ApiClient& api, const std::string& name, const std::string& qualifier,
                      const std::string& payload, bool show_log, int& exit_code);

// `gust deploy STAGE` and `gust invoke STAGE mod.fn` (cli_stage.cc).
Status DeployStage(ApiClient& api, const std::string& stage, const std::string& project_dir);
Status InvokeStage(ApiClient& api, const std::string& stage, const std::string& project_dir,
                   const std::string& function, bool raw, int& exit_code);

// $GUST_STATE_DIR, else ~/.gust.
std::string DefaultStateDir();
// <state dir>/credentials: an AWS shared-credentials file ([default] profile).
std::string CredentialsPath(const std::string& state_dir);
// A new random key pair: an AWS-looking key id, "GK" + 18 characters of [A-Z2-7] (AWS:
// "AKIA" + 16), and a 40-character secret. IoError when /dev/urandom cannot be read.
Result<http::sigv4::Credentials> NewCredentials();
// Its key pair; NotFound without the file, InvalidArgument naming the problem.
Result<http::sigv4::Credentials> ReadCredentialsFile(const std::string& path);
// What clients sign with: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, else the
// default state dir's credentials file; nullopt: requests go unsigned.
std::optional<http::sigv4::Credentials> ClientCredentials();

// Directory of the running executable (for gust-sandbox-init and the runtime).
std::string ExecutableDir();
// Prints "gust: <message>" to stderr and returns 2.
int Fail(const std::string& message);

}  // namespace gust::cli

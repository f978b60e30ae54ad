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
#include <string>

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

// Directory of the running executable (for gust-sandbox-init and the runtime).
std::string ExecutableDir();
// Prints "gust: <message>" to stderr and returns 2.
int Fail(const std::string& message);

}  // namespace gust::cli

#include "cli/cli.h"

#include <unistd.h>

#include <cstdio>

#include "cli/api_client.h"

namespace gust::cli {

std::string ExecutableDir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "gust: %s\n", message.c_str());
  return 2;
}

int RunCli(int argc, char** argv) {
  CLI::App app{
      "gust: serverless functions on your own machine.\n"
      "Functions run in isolated sandboxes that start in milliseconds, stay warm while used\n"
      "and vanish when idle. The function API is AWS Lambda's: boto3 and the aws CLI work\n"
      "with --endpoint-url http://127.0.0.1:7700.",
      "gust"};
  app.require_subcommand(1);
  auto state = std::make_shared<CliState>();
  state->url = DefaultEngineUrl();
  app.add_option("--url", state->url,
                 "Engine URL (default: $GUST_URL or http://127.0.0.1:7700). An https:// engine's "
                 "certificate is checked against $GUST_CA_BUNDLE, else $AWS_CA_BUNDLE, else the "
                 "system's CAs");
  app.set_version_flag("--version", "gust 0.1.0");
  AddEngineCommands(app, state);
  AddFunctionCommands(app, state);
  AddEventCommands(app, state);
  AddStageCommands(app, state);
  AddAuthCommands(app, state);
  AddClusterCommands(app, state);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return state->exit_code;
}

}  // namespace gust::cli

// gust: the command line and the engine (`gust up`) in one binary.
#include "cli/cli.h"

int main(int argc, char** argv) { return gust::cli::RunCli(argc, argv); }

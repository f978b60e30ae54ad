// `gust auth init` and the credentials files behind authentication: the
// engine's key pair in <state dir>/credentials, read by `gust up` (the key it
// checks signatures with) and by clients (the key they sign with, unless
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set).
//
// The file is an AWS shared-credentials file with one [default] profile, so
// boto3 and the aws CLI can use it as it is (AWS_SHARED_CREDENTIALS_FILE).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "common/base64.h"

namespace gust::cli {
namespace {

std::string Trimmed(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

Result<std::string> RandomBytes(size_t n) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string bytes(n, '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(n)))
    return Status::IoError("cannot read /dev/urandom");
  return bytes;
}

struct AuthInitOptions {
  std::string state_dir = DefaultStateDir();
  bool force = false;
};

Status AuthInit(const AuthInitOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);
  if (ec)
    return Status::IoError("cannot create the state dir " + o.state_dir + ": " + ec.message());
  std::string path = CredentialsPath(o.state_dir);
  GUST_ASSIGN_OR_RETURN(auto creds, NewCredentials());
  // O_EXCL: an existing key pair may be in use by clients; replacing it
  // takes --force. The file is created 0600 (the umask only narrows it).
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (o.force ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::Conflict(path +
                              " already exists: the engine and its clients may be using it. "
                              "`gust auth init --force` replaces it (restart the engine after)");
    }
    return Status::FromErrno("cannot create " + path, errno);
  }
  ::fchmod(fd, 0600);
  std::string text =
      "# gust engine credentials, written by `gust auth init`.\n"
      "# `gust up` checks request signatures (AWS SigV4) against this key; the gust CLI and\n"
      "# Python client sign with it. boto3 / aws: AWS_SHARED_CREDENTIALS_FILE=" +
      path +
      "\n"
      "[default]\n"
      "aws_access_key_id = " +
      creds.access_key_id + "\naws_secret_access_key = " + creds.secret_access_key + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return Status::IoError("cannot write " + path);
  std::printf(
      "access key id: %s\n"
      "secret key:    in %s (mode 0600)\n"
      "`gust up` uses it from now on (restart a running engine). The gust CLI and Python client\n"
      "on this machine sign with it; elsewhere set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"
      "(boto3 and the aws CLI read them too, or AWS_SHARED_CREDENTIALS_FILE=%s).\n",
      creds.access_key_id.c_str(), path.c_str(), path.c_str());
  return Status::Ok();
}

}  // namespace

Result<http::sigv4::Credentials> NewCredentials() {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  GUST_ASSIGN_OR_RETURN(std::string id_bytes, RandomBytes(18));
  GUST_ASSIGN_OR_RETURN(std::string secret_bytes, RandomBytes(30));
  http::sigv4::Credentials creds;
  creds.access_key_id = "GK";
  for (unsigned char c : id_bytes) creds.access_key_id += kAlphabet[c % kAlphabet.size()];
  creds.secret_access_key = Base64Encode(secret_bytes);  // 40 characters, like AWS's
  return creds;
}

std::string DefaultStateDir() {
  if (const char* env = std::getenv("GUST_STATE_DIR"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.gust";
}

std::string CredentialsPath(const std::string& state_dir) { return state_dir + "/credentials"; }

Result<http::sigv4::Credentials> ReadCredentialsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound("no credentials file " + path);
    return Status::FromErrno("cannot read " + path, errno);
  }
  http::sigv4::Credentials creds;
  std::string line, section;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = Trimmed(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = Trimmed(line.substr(1, line.size() - 2));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(path + ":" + std::to_string(number) +
                                     ": expected 'key = value'");
    }
    if (section != "default") continue;
    std::string key = Trimmed(line.substr(0, eq)), value = Trimmed(line.substr(eq + 1));
    if (key == "aws_access_key_id") creds.access_key_id = value;
    if (key == "aws_secret_access_key") creds.secret_access_key = value;
  }
  if (creds.access_key_id.empty() || creds.secret_access_key.empty()) {
    return Status::InvalidArgument(path +
                                   " has no [default] aws_access_key_id and aws_secret_access_key");
  }
  return creds;
}

std::optional<http::sigv4::Credentials> ClientCredentials() {
  const char* id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (id && *id && secret && *secret) return http::sigv4::Credentials{id, secret};
  auto file = ReadCredentialsFile(CredentialsPath(DefaultStateDir()));
  if (file.ok()) return *file;
  // No file: send unsigned (an engine without credentials checks nothing).
  if (file.status().code() != Code::kNotFound) {
    std::fprintf(stderr, "gust: warning: %s; sending unsigned requests\n",
                 file.status().message().c_str());
  }
  return std::nullopt;
}

void AddAuthCommands(CLI::App& app, std::shared_ptr<CliState> state) {
  auto* auth = app.add_subcommand("auth", "Credentials that API requests must be signed with");
  auth->require_subcommand(1);
  auto o = std::make_shared<AuthInitOptions>();
  auto* init = auth->add_subcommand(
      "init",
      "Create an access key and secret in the state dir (<state dir>/credentials, mode 0600). "
      "`gust up` then requires every API request to be signed with it (AWS SigV4: boto3, the "
      "aws CLI, curl --aws-sigv4, gust's own clients)");
  init->add_option("--state-dir", o->state_dir, "State dir ($GUST_STATE_DIR, ~/.gust)")
      ->capture_default_str();
  init->add_flag("--force", o->force, "Replace existing credentials");
  init->callback([o, state] {
    Status st = AuthInit(*o);
    if (!st.ok()) state->exit_code = Fail(st.message());
  });
}

}  // namespace gust::cli

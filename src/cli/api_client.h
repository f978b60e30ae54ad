// ApiClient: what every client command uses to reach the engine — the base URL
// (--url, else GUST_URL, else http://127.0.0.1:7700), JSON requests, and
// turning Lambda-shaped errors into one readable line:
//   "ResourceNotFoundException: Function not found: arn:...:function:f".
// A refused connection says how to start an engine. Requests are signed
// (AWS SigV4) with ClientCredentials() when there are any (cli.h).
//
// Thread-safety: one per thread (wraps a blocking http::Client).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/client.h"

namespace gust::cli {

std::string DefaultEngineUrl();

// The certificates an https:// engine is checked against: $GUST_CA_BUNDLE, else
// $AWS_CA_BUNDLE (what boto3 and the aws CLI read), else the system's (ca_file "").
// The same for a cluster node calling its peers (EngineConfig::cluster_ca_file).
http::ClientTls ClientTlsFromEnv();

class ApiClient {
 public:
  static Result<std::unique_ptr<ApiClient>> Connect(const std::string& url);
  const std::string& url() const { return url_; }
  // Sends and returns the response; transport failures and >= 400 answers become Status.
  Result<http::ClientResponse> Call(http::beast_http::verb method, const std::string& target,
                                    const std::string& body = "",
                                    const std::map<std::string, std::string>& headers = {});
  Result<nlohmann::json> CallJson(http::beast_http::verb method, const std::string& target,
                                  const nlohmann::json& body = nullptr);

 private:
  std::string url_;
  std::unique_ptr<http::Client> client_;
};

// "1.2 KiB", "3.4 MiB"
std::string HumanBytes(uint64_t bytes);

}  // namespace gust::cli

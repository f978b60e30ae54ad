#include "cli/api_client.h"

#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"

namespace gust::cli {

std::string DefaultEngineUrl() {
  const char* env = std::getenv("GUST_URL");
  return env && *env ? env : "http://127.0.0.1:7700";
}

http::ClientTls ClientTlsFromEnv() {
  http::ClientTls tls;
  for (const char* name : {"GUST_CA_BUNDLE", "AWS_CA_BUNDLE"}) {
    if (const char* env = std::getenv(name); env && *env) {
      tls.ca_file = env;
      break;
    }
  }
  return tls;
}

Result<std::unique_ptr<ApiClient>> ApiClient::Connect(const std::string& url) {
  GUST_ASSIGN_OR_RETURN(auto client, http::Client::Create(url, ClientTlsFromEnv()));
  if (auto creds = ClientCredentials()) client->SetCredentials(std::move(*creds));
  auto api = std::unique_ptr<ApiClient>(new ApiClient());
  api->url_ = url;
  api->client_ = std::move(client);
  return api;
}

Result<http::ClientResponse> ApiClient::Call(http::beast_http::verb method,
                                             const std::string& target, const std::string& body,
                                             const std::map<std::string, std::string>& headers) {
  auto response = client_->Do(method, target, body, headers);
  if (!response.ok()) {
    if (response.status().code() == Code::kUnavailable) {
      return Status::Unavailable(response.status().message() +
                                 "\n  is the engine running? start one with `gust up -d`, or set "
                                 "GUST_URL to reach another");
    }
    return response.status();
  }
  if (response->status >= 400) {
    std::string type = response->Header("x-amzn-errortype");
    std::string message = response->body;
    auto doc = nlohmann::json::parse(response->body, nullptr, false);
    if (doc.is_object()) {
      if (doc.contains("Message") && doc["Message"].is_string())
        message = doc["Message"];
      else if (doc.contains("message") && doc["message"].is_string())
        message = doc["message"];
    }
    if (type.empty()) type = "HTTP " + std::to_string(response->status);
    Code code = response->status == 404   ? Code::kNotFound
                : response->status == 409 ? Code::kConflict
                : response->status == 429 ? Code::kTooManyRequests
                : response->status == 413 ? Code::kTooLarge
                : response->status < 500  ? Code::kInvalidArgument
                                          : Code::kInternal;
    return Status(code, type + ": " + message);
  }
  return response;
}

Result<nlohmann::json> ApiClient::CallJson(http::beast_http::verb method, const std::string& target,
                                           const nlohmann::json& body) {
  GUST_ASSIGN_OR_RETURN(auto response, Call(method, target, body.is_null() ? "" : body.dump(),
                                            {{"Content-Type", "application/json"}}));
  if (response.body.empty()) return nlohmann::json::object();
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_discarded()) return Status::Internal("the engine answered with invalid JSON");
  return doc;
}

std::string HumanBytes(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  } else if (bytes < (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  }
  return buf;
}

}  // namespace gust::cli

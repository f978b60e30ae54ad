// Blocking HTTP/1.1 client for the CLI, tests and tools: one keep-alive
// connection to one base URL, reconnecting when the server closed it.
//
// A kept-alive connection the server has closed is detected before sending
// (the socket polls readable) and replaced. If the server closes it in the
// race window after that check, the request is sent once more on a fresh
// connection, but only when not a byte of the response was read.
// Every call has one deadline covering connect, write and read.
// With credentials set, every request is signed (AWS SigV4, sigv4.h).
//
// Thread-safety: one Client per thread (not synchronized).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/server.h"
#include "http/sigv4.h"

namespace gust::http {

struct ClientResponse {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string Header(const std::string& lowercase_name) const;  // "" if absent
};

class Client {
 public:
  // base_url: "http://127.0.0.1:7700", "http://localhost:7700/" or with a
  // path prefix prepended to every target ("http://h:1/api"). http only:
  // other schemes are InvalidArgument naming the URL. Does not connect.
  static Result<std::unique_ptr<Client>> Create(const std::string& base_url);
  ~Client();
  // target: "/2015-03-31/functions?MaxItems=10". Unavailable if the server
  // cannot be reached ("cannot connect to http://127.0.0.1:7700: Connection refused")
  // or the connection drops without a response; Timeout when the deadline passes.
  Result<ClientResponse> Do(beast_http::verb method, const std::string& target,
                            const std::string& body = "",
                            const std::map<std::string, std::string>& headers = {},
                            std::chrono::milliseconds timeout = std::chrono::seconds(960));
  // Signs every later request for service "lambda" (what gust's engine checks).
  void SetCredentials(sigv4::Credentials credentials);

 private:
  Client();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gust::http

// Blocking HTTP/1.1 client for the CLI, tests and tools: one keep-alive
// connection to one base URL, reconnecting when the server closed it.
//
// A kept-alive connection the server has closed is detected before sending
// (the socket polls readable) and replaced. If the server closes it in the
// race window after that check, the request is sent once more on a fresh
// connection, but only when not a byte of the response was read.
// Every call has one deadline covering connect, write and read.
// With credentials set, every request is signed (AWS SigV4, sigv4.h).
// An https:// URL speaks TLS 1.2+ and verifies the server's certificate
// against ClientTls::ca_file (else the system's CAs) and, unless told not
// to, that it names the URL's host.
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

struct ClientTls {
  // PEM file of the certificates to trust (a CA, or the server's own
  // self-signed certificate: a certificate in it is trusted even when it is
  // not a root). "": the system's CA store.
  std::string ca_file;
  // Check that the certificate names the URL's host (or IP address). Off
  // only for a caller that pinned ca_file to the one server it started.
  bool verify_host = true;
};

class Client {
 public:
  // base_url: "http://127.0.0.1:7700", "https://gust.lan:7700/" or with a
  // path prefix prepended to every target ("http://h:1/api"). Other schemes,
  // or an unreadable tls.ca_file for https, are InvalidArgument naming them.
  // Does not connect; a TLS handshake that fails (e.g. an untrusted
  // certificate) is Unavailable naming OpenSSL's reason.
  static Result<std::unique_ptr<Client>> Create(const std::string& base_url,
                                                const ClientTls& tls = {});
  ~Client();
  // target: "/2015-03-31/functions?MaxItems=10". Unavailable if the server
  // cannot be reached ("cannot connect to http://127.0.0.1:7700: Connection refused")
  // or the connection drops without a response; Timeout when the deadline passes.
  Result<ClientResponse> Do(beast_http::verb method, const std::string& target,
                            const std::string& body = "",
                            const std::map<std::string, std::string>& headers = {},
                            std::chrono::milliseconds timeout = std::chrono::seconds(960));
  // Signs every later request for service "lambda" (what gust's engine checks); headers
  // named x-gust-* are signed too.
  void SetCredentials(sigv4::Credentials credentials);
  // A peer that acknowledges nothing for `silence` (> 0) fails the request in progress with
  // Unavailable ("Connection timed out"), whatever its deadline: TCP keepalive probes while a
  // response is awaited, TCP_USER_TIMEOUT while sent data waits for its acknowledgement. For
  // cluster peers (docs/CLUSTER.md, "Step 6 as built"): a node cut off from the network
  // sends no RST, and a forwarded call's deadline is the longest function timeout (days).
  // A live peer's kernel answers the probes, so a slow function is not cut short. Applies to
  // connections made after the call.
  void SetPeerSilenceLimit(std::chrono::milliseconds silence);
  // Whether the last Do wrote its whole request out: when it failed and this is false, the
  // server cannot have acted on it (a cluster node's forward tries another node only then).
  bool LastRequestSent() const;

 private:
  Client();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gust::http

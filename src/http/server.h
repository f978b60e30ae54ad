// HTTP/1.1 server on Boost.Beast/Asio with keep-alive and pipelining-safe
// sequential handling per connection.
//
// A Handler receives the request and a Responder; it may answer at once or
// later (e.g. when a sandbox finishes), from any thread: Responder::Send posts
// the write onto the connection's executor. A connection handles one request
// at a time (HTTP/1.1 semantics: the next request is read only after the
// response was written); many connections run concurrently.
//
// Limits are enforced before the handler runs: header size (431), body size
// (413), malformed requests (400), each answered through the error hook so the
// API layer can shape the body, then the connection is closed. While the
// server waits on the client, idle_timeout_s bounds: a connection with no
// bytes read (between requests, or in a body), the wait for a request's whole
// header (Beast completes no read before it: a client trickling header lines
// is closed), and the write of a response (a client that takes it too slowly
// is closed). Time spent in the handler does not count. Connections are
// capped (max_connections, half the descriptors by default): one over the cap
// evicts the longest idle.
// A handler that never responds is a bug: when the last copy of its Responder
// is destroyed unanswered, the client gets a 500.
//
// Unix-domain listener: with unix_path set the server listens on that socket
// file (mode unix_mode) instead of host:port; each connection's peer
// credentials (SO_PEERCRED: pid, uid, gid in this process's namespaces, as the
// kernel recorded them at connect) reach the handler through Responder::Peer,
// so a handler can tell who asks without any secret (src/api/channel_api.h).
//
// TLS: with tls_cert_file and tls_key_file set, every connection speaks
// HTTPS (TLS 1.2 or later; the handshake is bounded by idle_timeout_s like a
// request header). A client that sends plain HTTP to it gets a plain-text
// 400 naming the mistake instead of a silent close.
//
// Threading: if the io_context was constructed with concurrency_hint 1
// (`boost::asio::io_context io(1)`), connections run directly on it, with no
// strands (fastest). Otherwise each connection gets its own strand, so any
// number of threads may run the io_context.
//
// Thread-safety: Server methods are called from the thread that owns it;
// handlers run on the io_context's threads; Responder is safe to use (and
// copy, one copy per thread) from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "http/file_body.h"

namespace gust::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;

// A response as handlers build it: Beast's (headers and a string body), plus a
// body to stream from a file instead (file_body.h; set: the string body is
// not sent). Beast's functions take it as the message it derives from.
struct Response : beast_http::response<beast_http::string_body> {
  using Message = beast_http::response<beast_http::string_body>;
  using Message::Message;

  std::optional<FileBody> file_body;
};

class Connection;  // internal

// Who is at the other end of a unix-domain connection; pid -1 for TCP (and
// for in-process Responders).
struct PeerCredentials {
  int pid = -1;
  uint32_t uid = 0;
  uint32_t gid = 0;
};
struct Exchange;  // internal: one request/response pair

// Answers one request exactly once. Copyable handle; the first Send wins, later
// ones are ignored. A default-constructed or moved-from Responder ignores Send.
class Responder {
 public:
  Responder() = default;
  // For the current request of `conn` (used by the server).
  explicit Responder(std::shared_ptr<Connection> conn);
  // A Responder not bound to a socket: the response (or the 500 sent when all
  // copies are dropped unanswered) goes to `sink`, on the thread that sends.
  // For tests and in-process callers.
  explicit Responder(std::function<void(Response&&)> sink);
  ~Responder();
  Responder(const Responder&) = default;
  Responder& operator=(const Responder&) = default;
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept = default;
  // Sets version, Content-Length, `Server: gust` and keep-alive (from the
  // request; a handler's explicit "Connection: close" is kept), then writes.
  void Send(Response response) const;
  // Remote endpoint "127.0.0.1:54321" (for logs and sourceIp), "unix:pid=N"
  // on a unix-domain listener; "" if unbound.
  std::string RemoteAddress() const;
  // The peer's credentials on a unix-domain listener (pid -1 otherwise).
  PeerCredentials Peer() const;

 private:
  std::shared_ptr<Exchange> exchange_;
};

using Handler = std::function<void(Request&& request, Responder responder)>;
// Builds the response for a request the server refused before the handler
// ran: status 413 (body too large), 400 (malformed), 431 (headers too large).
// May be empty: the server then answers {"message": "..."}.
using ErrorHook = std::function<Response(beast_http::status status, const std::string& message)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7700;  // 0: pick a free port (see Server::port())
  uint64_t max_body_bytes = 80ull << 20;
  uint32_t max_header_bytes = 64 * 1024;
  int idle_timeout_s = 120;
  // Open connections at most; 0: half the soft RLIMIT_NOFILE (read at each
  // accept), so idle clients cannot take the descriptors the rest of the
  // process needs. A connection accepted over the cap closes the one that has
  // waited longest for a request (HTTP lets a server close an idle
  // keep-alive connection), or is itself closed if every one is busy.
  size_t max_connections = 0;
  // PEM files: the certificate chain (leaf first) and its private key. Both
  // or neither; Start() fails naming the file that cannot be used.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Listen on this unix socket path instead of host:port (a stale file there
  // is replaced); the file gets unix_mode. At most 107 bytes (sun_path).
  std::string unix_path;
  uint32_t unix_mode = 0600;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler, ErrorHook on_error);
  // Calls Stop(). Connections still alive keep the internals alive until they
  // finish; the io_context must outlive them (as usual with Asio).
  ~Server();
  // Binds and starts accepting. IoError naming the address (or socket path) if it cannot
  // bind; InvalidArgument naming the file if the TLS certificate or key
  // cannot be read, parsed or do not match.
  Status Start();
  // Stops accepting and closes idle connections; a connection whose handler
  // is still running is closed after its response is written. After Stop,
  // nothing of the server keeps io_context::run() from returning.
  void Stop();
  // The bound port (the picked one when options.port was 0); 0 before Start.
  uint16_t port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Stamps what every response gets before it is written: version,
// Content-Length, `Server: gust`, keep-alive (from the request; a handler's
// "Connection: close" is kept). A body on a 1xx, 204 or 304 is dropped (HTTP
// forbids one; Beast would throw). A response to HEAD keeps the
// Content-Length of the body it would have had. Never throws.
void PrepareResponse(Response& response, unsigned version, bool keep_alive, bool head = false);

// Helpers for building responses.
Response MakeResponse(beast_http::status status, std::string body,
                      const std::string& content_type = "application/json");

}  // namespace gust::http

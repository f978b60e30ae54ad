// HTTP/1.1 server on Boost.Beast/Asio with keep-alive and pipelining-safe
// sequential handling per connection.
//
// A Handler receives the request and a Responder; it may answer at once or
// later (e.g. when a sandbox finishes), from any thread: Responder::Send posts
// the write onto the connection's executor. A connection handles one request
// at a time (HTTP/1.1 semantics); many connections run concurrently.
//
// Limits are enforced before the handler runs: header size, body size (413
// through the error hook, so the API layer can shape the body), and an idle
// timeout. A handler that never responds is a bug; the connection is closed
// when the Responder is destroyed unanswered (500).
//
// Thread-safety: Server methods are called from the thread that owns it;
// handlers run on the io_context's threads.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace gust::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;

class Connection;  // internal

// Answers one request exactly once. Copyable handle; the first Send wins.
class Responder {
 public:
  explicit Responder(std::shared_ptr<Connection> conn);
  ~Responder();
  Responder(const Responder&) = default;
  Responder& operator=(const Responder&) = default;
  // Sets Content-Length, Server and keep-alive from the request, then writes.
  void Send(Response response) const;
  // Remote endpoint "127.0.0.1:54321" (for logs and sourceIp).
  std::string RemoteAddress() const;

 private:
  std::shared_ptr<Connection> conn_;
};

using Handler = std::function<void(Request&& request, Responder responder)>;
// Builds the response for a request the server refused before the handler
// ran: status 413 (body too large), 400 (malformed), 431 (headers too large).
using ErrorHook = std::function<Response(beast_http::status status, const std::string& message)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7700;               // 0: pick a free port (see Server::port())
  uint64_t max_body_bytes = 80ull << 20;
  uint32_t max_header_bytes = 64 * 1024;
  int idle_timeout_s = 120;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler, ErrorHook on_error);
  ~Server();
  // Binds and starts accepting. IoError naming the address if it cannot bind.
  Status Start();
  // Stops accepting and closes idle connections.
  void Stop();
  uint16_t port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Helpers for building responses.
Response MakeResponse(beast_http::status status, std::string body,
                      const std::string& content_type = "application/json");

}  // namespace gust::http

#include "http/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/json_read.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"

#include <nlohmann/json.hpp>

namespace gust::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
// TCP and unix-domain connections share one socket type: Asio's generic
// stream protocol carries either (its reads and writes are the same recv/send),
// so one Connection class serves both listeners.
using generic_stream = asio::generic::stream_protocol;
using Socket = generic_stream::socket;
using TlsStream = beast::ssl_stream<Socket>;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// After refusing a request we read (and drop) what the client still sends for
// at most this long, so closing does not reset the connection before the
// client has read our answer.
constexpr auto kMaxDrain = std::chrono::seconds(2);
// A FileBody is written this much at a time: the memory one response holds.
constexpr uint64_t kFileChunk = 512 * 1024;

// JSON string contents without the quotes.
std::string JsonEscape(std::string_view s) {
  std::string quoted = JsonDump(nlohmann::json(std::string(s)));
  return quoted.substr(1, quoted.size() - 2);
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const auto& addr = ep.address();
  std::string out = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  out += ':';
  out += std::to_string(ep.port());
  return out;
}

// A TCP peer "127.0.0.1:54321"; a unix-domain one "unix:pid=N".
std::string FormatPeer(const generic_stream::endpoint& ep, const PeerCredentials& creds) {
  if (ep.protocol().family() == AF_UNIX) return "unix:pid=" + std::to_string(creds.pid);
  tcp::endpoint out;
  if (ep.size() > out.capacity()) return "?";
  std::memcpy(out.data(), ep.data(), ep.size());
  out.resize(ep.size());
  return FormatEndpoint(out);
}

// The port of a bound IPv4/IPv6 endpoint (sin_port and sin6_port share their offset).
uint16_t PortOf(const generic_stream::endpoint& ep) {
  if (ep.protocol().family() == AF_UNIX) return 0;
  tcp::endpoint out;
  if (ep.size() > out.capacity()) return 0;
  std::memcpy(out.data(), ep.data(), ep.size());
  out.resize(ep.size());
  return out.port();
}

// With concurrency_hint 1 the application promises a single thread runs the
// io_context, so connections need no strand.
bool NeedsStrands(asio::io_context& io) {
  return asio::use_service<asio::detail::scheduler>(io).concurrency_hint() != 1;
}

// OpenSSL's reason for a failed TLS step ("key values mismatch"), else ec's.
std::string TlsReason(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    if (const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value())))
      return reason;
  }
  return ec.message();
}

// The server's TLS context from PEM files; InvalidArgument naming the file
// and OpenSSL's reason when one cannot be used.
Result<std::unique_ptr<asio::ssl::context>> LoadTlsContext(const ServerOptions& options) {
  const std::string& cert = options.tls_cert_file;
  const std::string& key = options.tls_key_file;
  if (cert.empty() != key.empty()) {
    return Status::InvalidArgument(
        "TLS needs both a certificate and its private key (--tls-cert and --tls-key), got only " +
        std::string(cert.empty() ? "a key" : "a certificate"));
  }
  for (const auto& [what, path] : {std::pair{"certificate", cert}, std::pair{"private key", key}}) {
    if (!std::ifstream(path)) {
      return Status::InvalidArgument("cannot read the TLS " + std::string(what) + " " + path +
                                     ": " + std::strerror(errno));
    }
  }
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  // No TLS 1.3 session tickets: a ticket arrives after the handshake, and a
  // keep-alive client that polls its idle socket for readability (ours does,
  // to spot a connection the server closed) would take it for a close.
  ::SSL_CTX_set_num_tickets(ctx->native_handle(), 0);
  error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) {
    return Status::InvalidArgument("the TLS certificate " + cert +
                                   " is not a PEM certificate chain: " + TlsReason(ec));
  }
  ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) {
    return Status::InvalidArgument("the TLS private key " + key + " cannot be used with " + cert +
                                   ": " + TlsReason(ec));
  }
  return ctx;
}

// A TLS handshake that failed because the client spoke plain HTTP.
bool IsPlainHttp(const error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST;
}

}  // namespace

void PrepareResponse(Response& response, unsigned version, bool keep_alive, bool head) {
  bool handler_keep_alive = response.keep_alive();
  response.version(version);
  response.keep_alive(keep_alive && handler_keep_alive);
  response.set(beast_http::field::server, "gust");
  // HTTP forbids a body on 1xx, 204 and 304, and Beast's prepare_payload()
  // throws on one: a handler (or a function's answer relayed by the gateway)
  // that sets such a status with a body loses the body, not the engine.
  unsigned code = response.result_int();
  if (code < 200 || code == 204 || code == 304) response.body().clear();
  // A HEAD answer may state the length of a body it never built (an S3
  // object's size, src/api/s3_api.h) rather than build it to be measured:
  // an empty body with a Content-Length set is kept as it is for HEAD.
  const bool head_length_given = head && response.body().empty() && response.has_content_length();
  if (!head_length_given) response.prepare_payload();
  if (head) response.body().clear();
}

Response MakeResponse(beast_http::status status, std::string body,
                      const std::string& content_type) {
  Response response(status, 11);
  response.set(beast_http::field::content_type, content_type);
  response.body() = std::move(body);
  return response;
}

// State shared by the Server and its connections (which may outlive it).
struct ServerCore : std::enable_shared_from_this<ServerCore> {
  ServerCore(asio::io_context& io_context, ServerOptions opts, Handler h, ErrorHook e)
      : io(io_context),
        options(std::move(opts)),
        handler(std::move(h)),
        on_error(std::move(e)),
        use_strands(NeedsStrands(io_context)),
        acceptor(use_strands ? asio::any_io_executor(asio::make_strand(io_context))
                             : asio::any_io_executor(io_context.get_executor())),
        accept_retry(acceptor.get_executor()),
        idle_timeout(std::chrono::seconds(std::max(1, options.idle_timeout_s))) {}

  void DoAccept();
  void OnAccept(error_code ec, Socket socket);
  size_t MaxConnections() const;
  // Over the cap: closes the connection other than newcomer that has waited
  // longest for a request. False if every one is busy.
  bool EvictLongestIdle(Connection* newcomer);

  asio::io_context& io;
  const ServerOptions options;
  const Handler handler;
  const ErrorHook on_error;
  const bool use_strands;
  asio::basic_socket_acceptor<generic_stream>
      acceptor;                     // TCP or unix; used on its executor only, after Start
  asio::steady_timer accept_retry;  // backoff when accept fails (e.g. EMFILE)
  const Clock::duration idle_timeout;
  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};
  std::atomic<uint16_t> port{0};
  // Set by Start() before the first accept; null: plain HTTP.
  std::unique_ptr<asio::ssl::context> tls;

  Mutex mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections GUARDED_BY(mu);
  Clock::time_point last_eviction_log GUARDED_BY(mu);
};

struct Server::Impl : ServerCore {
  using ServerCore::ServerCore;
};

// One accepted socket, plain or TLS. All members are used on the socket's
// executor only, except peer_ (immutable) and Deliver() (any thread).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerCore> core, Socket socket, std::string peer,
             PeerCredentials creds)
      : core_(std::move(core)),
        executor_(socket.get_executor()),
        timer_(executor_),
        peer_(std::move(peer)),
        creds_(creds) {
    if (core_->tls) {
      tls_ = std::make_unique<TlsStream>(std::move(socket), *core_->tls);
    } else {
      socket_.emplace(std::move(socket));
    }
  }

  ~Connection() {
    MutexLock lock(&core_->mu);
    core_->connections.erase(this);
  }

  void Start() {
    ArmTimer(Clock::now() + core_->idle_timeout);
    if (!tls_) return DoRead();
    // The handshake is waited for like a request header: idle_timeout bounds
    // it, and a connection stuck in it is idle (the first to be evicted).
    state_ = State::kHandshaking;
    idle_since_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    Touch();
    tls_->async_handshake(asio::ssl::stream_base::server,
                          [self = shared_from_this()](error_code ec) { self->OnHandshake(ec); });
  }

  // Any thread: hands a prepared response to the executor.
  void Deliver(Response&& response) {
    asio::dispatch(executor_, [self = shared_from_this(), r = std::move(response)]() mutable {
      self->Write(std::move(r), /*refusal=*/false);
    });
  }

  // Any thread: a prepared header (its Content-Length the file's) and the
  // file whose bytes follow it.
  void DeliverFile(Response&& head, FileBody body) {
    asio::dispatch(executor_,
                   [self = shared_from_this(), r = std::move(head), b = std::move(body)]() mutable {
                     if (self->state_ == State::kHandling) self->file_ = std::move(b);
                     self->Write(std::move(r), /*refusal=*/false);
                   });
  }

  // From Server::Stop, on the executor.
  void Shutdown() {
    switch (state_) {
      case State::kHandshaking:
      case State::kReading:
      case State::kDraining:
        Close();
        break;
      case State::kHandling:
        // Nothing may keep io_context::run() busy; the response, if it comes,
        // is written with "Connection: close".
        timer_.cancel();
        break;
      case State::kWriting:  // closes after the write; the timer bounds a stall
      case State::kClosed:
        break;
    }
  }

  asio::any_io_executor executor() { return executor_; }
  const std::string& peer() const { return peer_; }
  const PeerCredentials& credentials() const { return creds_; }
  // When the connection began waiting for a request of which no read has
  // completed yet (steady clock, ns); 0 otherwise. Read from any thread.
  int64_t idle_since() const { return idle_since_.load(std::memory_order_relaxed); }

  // On the executor: closes the connection if it still waits for a request
  // (one that is busy, or reading a body, is left alone).
  void EvictIfIdle() {
    if ((state_ == State::kReading || state_ == State::kHandshaking) && idle_since() != 0) Close();
  }
  unsigned request_version() const { return request_version_; }
  bool request_keep_alive() const { return request_keep_alive_; }
  bool request_is_head() const { return request_is_head_; }

 private:
  enum class State { kHandshaking, kReading, kHandling, kWriting, kDraining, kClosed };

  void Touch() { deadline_ = Clock::now() + core_->idle_timeout; }

  // The socket under the (possibly TLS) stream.
  Socket& Sock() { return tls_ ? tls_->next_layer() : *socket_; }

  // Calls f with the stream HTTP is read from and written to: the TLS stream,
  // or the bare socket (also for the plain-text refusal of a plain-HTTP
  // client on a TLS port).
  template <class F>
  void WithStream(F&& f) {
    if (tls_ && !plaintext_) {
      f(*tls_);
    } else {
      f(Sock());
    }
  }

  void OnHandshake(error_code ec) {
    if (state_ != State::kHandshaking) return;  // closed meanwhile
    if (!ec) return DoRead();
    if (IsPlainHttp(ec)) {
      plaintext_ = true;
      return Refuse(beast_http::status::bad_request,
                    "this port speaks HTTPS, and the request came as plain HTTP: use an "
                    "https:// URL");
    }
    spdlog::debug("http: TLS handshake with {} failed: {}", peer_, TlsReason(ec));
    Close();
  }

  void DoRead() {
    if (core_->stopping.load(std::memory_order_relaxed)) return Close();
    state_ = State::kReading;
    parser_.emplace();
    parser_->body_limit(core_->options.max_body_bytes);
    parser_->header_limit(core_->options.max_header_bytes);
    parser_->eager(true);
    sent_continue_ = false;
    idle_since_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    Touch();
    ReadSome();
  }

  void ReadSome() {
    WithStream([&](auto& stream) {
      beast_http::async_read_some(
          stream, buffer_, *parser_,
          [self = shared_from_this()](error_code ec, std::size_t) { self->OnRead(ec); });
    });
  }

  void OnRead(error_code ec) {
    if (state_ != State::kReading) return;  // closed meanwhile
    if (ec) return OnReadError(ec);
    // Beast completes no read before the whole header is in, so bytes of
    // headers trickled in (slowloris) never get here to extend the deadline.
    idle_since_.store(0, std::memory_order_relaxed);
    Touch();
    if (!parser_->is_done()) {
      if (!sent_continue_ && parser_->is_header_done()) {
        sent_continue_ = true;
        const auto& req = parser_->get();
        auto expect = req[beast_http::field::expect];
        if (req.version() >= 11 && beast::iequals(expect, "100-continue")) {
          // Clients wait (curl: 1 s) for this before sending a large body.
          WithStream([&](auto& stream) {
            asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                              [self = shared_from_this()](error_code wec, std::size_t) {
                                if (wec) return self->Close();
                                self->ReadSome();
                              });
          });
          return;
        }
      }
      return ReadSome();
    }
    // Once stopping, the handler's owner may be going away: don't call it.
    if (core_->stopping.load(std::memory_order_relaxed)) return Close();
    state_ = State::kHandling;
    Request request = parser_->release();
    request_version_ = request.version();
    request_keep_alive_ = request.keep_alive();
    request_is_head_ = request.method() == beast_http::verb::head;
    try {
      core_->handler(std::move(request), Responder(shared_from_this()));
    } catch (const std::exception& e) {
      // The Responder is gone by now: the client gets a 500.
      spdlog::error("http handler threw: {}", e.what());
    }
    // Send may already have started the write: touch nothing here.
  }

  void OnReadError(error_code ec) {
    using err = beast_http::error;
    if (ec == err::body_limit) {
      return Refuse(beast_http::status::payload_too_large,
                    "request body exceeds the limit of " +
                        std::to_string(core_->options.max_body_bytes) + " bytes");
    }
    if (ec == err::header_limit) {
      return Refuse(beast_http::status::request_header_fields_too_large,
                    "request headers exceed the limit of " +
                        std::to_string(core_->options.max_header_bytes) + " bytes");
    }
    if (ec.category() == beast_http::make_error_code(err::bad_target).category() &&
        ec != err::end_of_stream && ec != err::partial_message) {
      return Refuse(beast_http::status::bad_request, "malformed request: " + ec.message());
    }
    Close();  // end of stream, reset, or aborted by Close()/Stop()
  }

  // Answers a request the handler never saw, then closes.
  void Refuse(beast_http::status status, const std::string& message) {
    Response response;
    try {
      if (core_->on_error) {
        response = core_->on_error(status, message);
      } else {
        response = MakeResponse(status, "{\"message\":\"" + JsonEscape(message) + "\"}");
      }
    } catch (const std::exception& e) {
      spdlog::error("http error hook threw: {}", e.what());
      response = MakeResponse(status, "");
    }
    PrepareResponse(response, 11, /*keep_alive=*/false);
    state_ = State::kHandling;
    Write(std::move(response), /*refusal=*/true);
  }

  void Write(Response&& response, bool refusal) {
    if (state_ != State::kHandling) return;  // closed (Stop, timeout, peer gone)
    response_ = std::move(response);
    if (core_->stopping.load(std::memory_order_relaxed)) response_.keep_alive(false);
    close_after_ = !response_.keep_alive();
    drain_after_ = refusal;
    state_ = State::kWriting;
    Touch();
    WithStream([&](auto& stream) {
      beast_http::async_write(
          stream, response_,
          [self = shared_from_this()](error_code ec, std::size_t) { self->OnWrite(ec); });
    });
  }

  void OnWrite(error_code ec) {
    if (state_ != State::kWriting) return;
    response_ = Response();  // don't hold a large body while idle
    if (ec) return Close();
    if (file_ && file_->length > 0) return WriteFileChunk();
    AfterWrite();
  }

  // The next piece of a FileBody, read on this thread (a page-cache read;
  // src/api/s3_api.h serves objects this way).
  void WriteFileChunk() {
    size_t n = static_cast<size_t>(std::min<uint64_t>(file_->length, kFileChunk));
    file_buf_.resize(n);
    ssize_t got;
    do {
      got = ::pread(file_->fd, file_buf_.data(), n, static_cast<off_t>(file_->offset));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
      // The Content-Length was promised: the client sees a short body.
      spdlog::warn("http: reading a response body for {} failed", peer_);
      return Close();
    }
    file_->offset += static_cast<uint64_t>(got);
    file_->length -= static_cast<uint64_t>(got);
    Touch();
    WithStream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(file_buf_.data(), static_cast<size_t>(got)),
                        [self = shared_from_this()](error_code wec, std::size_t) {
                          if (self->state_ != State::kWriting) return;
                          if (wec) return self->Close();
                          if (self->file_->length > 0) return self->WriteFileChunk();
                          self->AfterWrite();
                        });
    });
  }

  void AfterWrite() {
    file_.reset();
    file_buf_ = std::string();
    if (drain_after_) return StartDrain();
    if (close_after_ || core_->stopping.load(std::memory_order_relaxed)) return Close();
    DoRead();
  }

  void StartDrain() {
    error_code ignored;
    Sock().shutdown(Socket::shutdown_send, ignored);
    state_ = State::kDraining;
    deadline_ = Clock::now() + std::min<Clock::duration>(core_->idle_timeout, kMaxDrain);
    buffer_.clear();
    DrainSome();
  }

  // Raw bytes, TLS or not: they are discarded undecrypted.
  void DrainSome() {
    Sock().async_read_some(buffer_.prepare(16 * 1024),
                           [self = shared_from_this()](error_code ec, std::size_t) {
                             if (ec || self->state_ != State::kDraining) return self->Close();
                             self->DrainSome();  // discarded: never committed
                           });
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    idle_since_.store(0, std::memory_order_relaxed);
    // TLS connections end without a close_notify: every response is framed
    // by Content-Length or chunking, so a truncation cannot pass unnoticed.
    error_code ignored;
    Sock().shutdown(Socket::shutdown_both, ignored);
    Sock().close(ignored);
    timer_.cancel();
    // parser_ stays: a read that completed before the close may still be
    // queued, and Beast's read op feeds its bytes to the parser before our
    // handler sees the state (resetting it here crashed one run in ~200).
  }

  // One timer per connection, re-armed lazily: the hot path only moves
  // deadline_, which is cheaper than restarting a timer per operation.
  void ArmTimer(Clock::time_point when) {
    timer_.expires_at(when);
    timer_.async_wait([self = shared_from_this()](error_code ec) { self->OnTimer(ec); });
  }

  void OnTimer(error_code ec) {
    if (ec || state_ == State::kClosed) return;
    const auto now = Clock::now();
    if (state_ == State::kHandling) {
      if (core_->stopping.load(std::memory_order_relaxed)) return;
      return ArmTimer(now + core_->idle_timeout);
    }
    if (now >= deadline_) return Close();
    ArmTimer(deadline_);
  }

  std::shared_ptr<ServerCore> core_;
  const asio::any_io_executor executor_;
  std::optional<Socket> socket_;    // plain HTTP
  std::unique_ptr<TlsStream> tls_;  // HTTPS (owns the socket)
  bool plaintext_ = false;          // answering a plain-HTTP client of a TLS port
  asio::steady_timer timer_;
  const std::string peer_;  // FormatPeer's
  const PeerCredentials creds_;
  beast::flat_buffer buffer_;  // reused across requests; may hold pipelined bytes
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  Response response_;             // the one being written
  std::optional<FileBody> file_;  // its body's bytes still to write, from a file
  std::string file_buf_;          // the piece being written
  State state_ = State::kReading;
  Clock::time_point deadline_;
  unsigned request_version_ = 11;
  bool request_keep_alive_ = true;
  bool request_is_head_ = false;
  bool sent_continue_ = false;
  std::atomic<int64_t> idle_since_{0};
  bool close_after_ = false;
  bool drain_after_ = false;
};

// ---- Responder ----

struct Exchange {
  ~Exchange() {
    if (sent.exchange(true, std::memory_order_acq_rel)) return;
    try {
      Response r = MakeResponse(beast_http::status::internal_server_error,
                                R"({"Type":"Service","message":"the handler did not respond"})");
      r.set("X-Amzn-ErrorType", "ServiceException");
      Finish(std::move(r));
    } catch (const std::exception& e) {
      spdlog::error("http: cannot send 500 for an unanswered request: {}", e.what());
    }
  }

  void Finish(Response&& response) {
    PrepareResponse(response, version, keep_alive, head);
    if (conn) {
      conn->Deliver(std::move(response));
    } else if (sink) {
      sink(std::move(response));
    }
  }

  void FinishFile(Response&& response, FileBody body) {
    response.body().clear();
    PrepareResponse(response, version, keep_alive, head);
    response.content_length(body.length);
    if (conn && !head) {
      conn->DeliverFile(std::move(response), std::move(body));
      return;
    }
    // HEAD, or an in-process caller: the body is read whole (or not at all).
    if (!head && body.length > 0) {
      std::string& out = response.body();
      out.resize(body.length);
      size_t done = 0;
      while (done < out.size()) {
        ssize_t got = ::pread(body.fd, out.data() + done, out.size() - done,
                              static_cast<off_t>(body.offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        done += static_cast<size_t>(got);
      }
      out.resize(done);
      response.content_length(done);
    }
    if (conn) {
      conn->Deliver(std::move(response));
    } else if (sink) {
      sink(std::move(response));
    }
  }

  std::shared_ptr<Connection> conn;
  std::function<void(Response&&)> sink;
  unsigned version = 11;
  bool keep_alive = true;
  bool head = false;
  std::atomic<bool> sent{false};
};

Responder::Responder(std::shared_ptr<Connection> conn) : exchange_(std::make_shared<Exchange>()) {
  exchange_->version = conn->request_version();
  exchange_->keep_alive = conn->request_keep_alive();
  exchange_->head = conn->request_is_head();
  exchange_->conn = std::move(conn);
}

Responder::Responder(std::function<void(Response&&)> sink)
    : exchange_(std::make_shared<Exchange>()) {
  exchange_->sink = std::move(sink);
}

Responder::~Responder() = default;

void Responder::Send(Response response) const {
  if (!exchange_ || exchange_->sent.exchange(true, std::memory_order_acq_rel)) return;
  if (response.file_body) {
    FileBody file = std::move(*response.file_body);
    response.file_body.reset();
    return exchange_->FinishFile(std::move(response), std::move(file));
  }
  exchange_->Finish(std::move(response));
}

std::string Responder::RemoteAddress() const {
  if (!exchange_ || !exchange_->conn) return "";
  return exchange_->conn->peer();
}

PeerCredentials Responder::Peer() const {
  if (!exchange_ || !exchange_->conn) return {};
  return exchange_->conn->credentials();
}

// ---- Server ----

void ServerCore::DoAccept() {
  asio::any_io_executor ex = use_strands ? asio::any_io_executor(asio::make_strand(io))
                                         : asio::any_io_executor(io.get_executor());
  acceptor.async_accept(ex, [self = shared_from_this()](error_code ec, Socket socket) {
    self->OnAccept(ec, std::move(socket));
  });
}

void ServerCore::OnAccept(error_code ec, Socket socket) {
  if (stopping.load() || !acceptor.is_open()) return;
  if (ec) {
    // Out of descriptors and the like: back off instead of spinning.
    spdlog::warn("http: accept on port {} failed: {}", port.load(), ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(50));
    accept_retry.async_wait([self = shared_from_this()](error_code wec) {
      if (!wec) self->DoAccept();
    });
    return;
  }
  error_code ignored;
  PeerCredentials creds;
  if (options.unix_path.empty()) {
    socket.set_option(tcp::no_delay(true), ignored);
  } else {
    // Who connected, as the kernel recorded it at connect(): pid and uid in
    // this process's namespaces (a sandbox's pid 2 is a plain pid here).
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      creds = {.pid = cred.pid, .uid = cred.uid, .gid = cred.gid};
    }
  }
  std::string peer = FormatPeer(socket.remote_endpoint(ignored), creds);
  auto conn =
      std::make_shared<Connection>(shared_from_this(), std::move(socket), std::move(peer), creds);
  bool over_cap;
  {
    MutexLock lock(&mu);
    connections.emplace(conn.get(), conn);
    over_cap = connections.size() > MaxConnections();
  }
  // With every connection busy, the newcomer is the one refused: dropping
  // it unstarted closes its socket.
  if (over_cap && !EvictLongestIdle(conn.get())) return DoAccept();
  if (use_strands) {
    // Start inside the connection's strand so its handlers never overlap it.
    asio::post(conn->executor(), [conn] { conn->Start(); });
  } else {
    conn->Start();
  }
  DoAccept();
}

size_t ServerCore::MaxConnections() const {
  if (options.max_connections > 0) return options.max_connections;
  // Read per accept, not at Start: the engine raises its limit after binding.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return std::max<size_t>(16, limit.rlim_cur / 2);
}

bool ServerCore::EvictLongestIdle(Connection* newcomer) {
  std::shared_ptr<Connection> victim;
  size_t count;
  bool log = false;
  {
    MutexLock lock(&mu);
    count = connections.size();
    int64_t oldest = 0;
    for (auto& [raw, weak] : connections) {
      if (raw == newcomer) continue;
      auto conn = weak.lock();
      int64_t since = conn ? conn->idle_since() : 0;
      if (since == 0 || (oldest != 0 && since >= oldest)) continue;
      victim = std::move(conn);
      oldest = since;
    }
    auto now = Clock::now();
    if (now - last_eviction_log >= std::chrono::seconds(10)) {
      last_eviction_log = now;
      log = true;
    }
  }
  if (log) {
    spdlog::warn(
        "http: {} connections on port {}, over the cap of {} (half the descriptors): closing "
        "the ones idle longest{}",
        count, port.load(), MaxConnections(), victim ? "" : " (none idle: closing the new one)");
  }
  if (!victim) return false;
  asio::post(victim->executor(), [victim] { victim->EvictIfIdle(); });
  return true;
}

Server::Server(boost::asio::io_context& io, ServerOptions options, Handler handler,
               ErrorHook on_error)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler),
                                   std::move(on_error))) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  auto& core = *impl_;
  const bool is_unix = !core.options.unix_path.empty();
  const std::string where = is_unix ? core.options.unix_path
                                    : core.options.host + ":" + std::to_string(core.options.port);
  if (core.started.exchange(true))
    return Status::Internal("server on " + where + " already started");
  if (!core.options.tls_cert_file.empty() || !core.options.tls_key_file.empty()) {
    GUST_ASSIGN_OR_RETURN(core.tls, LoadTlsContext(core.options));
  }
  error_code ec;
  generic_stream::endpoint endpoint;
  auto address = asio::ip::make_address(core.options.host, ec);
  if (is_unix) {
    ec = {};
    if (core.options.unix_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Status::InvalidArgument("cannot listen on " + where +
                                     ": a unix socket path has at most 107 bytes");
    }
    // A socket file left by an engine that died is in the way of bind().
    ::unlink(core.options.unix_path.c_str());
    endpoint = asio::local::stream_protocol::endpoint(core.options.unix_path);
  } else if (!ec) {
    endpoint = tcp::endpoint(address, core.options.port);
  } else {
    tcp::resolver resolver(core.io);
    auto results = resolver.resolve(core.options.host, std::to_string(core.options.port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return Status::IoError("cannot listen on " + where + ": " +
                             (ec ? ec.message() : "host not found"));
    }
    endpoint = results.begin()->endpoint();
  }
  auto fail = [&](const char* step) {
    error_code ignored;
    core.acceptor.close(ignored);
    return Status::IoError("cannot listen on " + where + ": " + step + ": " + ec.message());
  };
  core.acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  if (!is_unix) {
    core.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (ec) return fail("setsockopt");
  }
  core.acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  if (is_unix && ::chmod(core.options.unix_path.c_str(), core.options.unix_mode) != 0) {
    ec = error_code(errno, boost::system::system_category());
    return fail("chmod");
  }
  core.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  auto local = core.acceptor.local_endpoint(ec);
  if (ec) return fail("getsockname");
  core.port = PortOf(local);
  asio::post(core.acceptor.get_executor(), [self = impl_] { self->DoAccept(); });
  return Status::Ok();
}

void Server::Stop() {
  auto& core = *impl_;
  if (core.stopping.exchange(true)) return;
  asio::post(core.acceptor.get_executor(), [self = impl_] {
    error_code ignored;
    self->acceptor.close(ignored);
    self->accept_retry.cancel();
  });
  std::vector<std::shared_ptr<Connection>> live;
  {
    MutexLock lock(&core.mu);
    live.reserve(core.connections.size());
    for (auto& [raw, weak] : core.connections) {
      if (auto conn = weak.lock()) live.push_back(std::move(conn));
    }
  }
  for (auto& conn : live) {
    auto ex = conn->executor();
    asio::post(ex, [c = std::move(conn)] { c->Shutdown(); });
  }
}

uint16_t Server::port() const { return impl_->port.load(); }

}  // namespace gust::http

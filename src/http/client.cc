#include "http/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <vector>

namespace gust::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

std::string ClientResponse::Header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() ? std::string() : it->second;
}

// The blocking calls run asynchronous Beast operations on a private
// io_context: that is what gives every step (connect, write, read) a deadline.
struct Client::Impl {
  std::string url;                                // "http://host:port/prefix" for messages
  std::string host;                               // without brackets
  std::string port;                               // "7700"
  std::string host_header;                        // "host:port" as given
  std::string prefix;                             // "" or "/prefix"
  std::optional<sigv4::Credentials> credentials;  // set: every request is signed
  asio::io_context io{1};
  std::unique_ptr<asio::ssl::context> tls_context;  // https only
  bool verify_host = true;
  beast::tcp_stream plain{io};     // http: reused across connections
  std::unique_ptr<TlsStream> tls;  // https: one per connection (TLS state)
  beast::flat_buffer buffer;
  std::vector<tcp::endpoint> endpoints;  // resolved once
  bool connected = false;
  bool sent = false;  // the last Do wrote its whole request (LastRequestSent)
  std::chrono::milliseconds peer_silence{0};  // SetPeerSilenceLimit; 0: the kernel's defaults

  // Best effort: a socket that refuses an option keeps the kernel's defaults (the request's
  // deadline still bounds it).
  void ApplyPeerSilenceLimit() {
    if (peer_silence.count() <= 0) return;
    int fd = Tcp().socket().native_handle();
    // Probes start after a quarter of the limit of silence and repeat every quarter; the user
    // timeout ends the connection once the whole limit passed without an acknowledgement.
    int quarter_s = std::max(1, static_cast<int>(peer_silence.count() / 4000));
    int on = 1, count = 4;
    unsigned int user_timeout_ms = static_cast<unsigned int>(peer_silence.count());
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &quarter_s, sizeof quarter_s);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &quarter_s, sizeof quarter_s);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
  }

  void Run() {
    io.restart();
    io.run();
  }

  // The TCP stream (deadlines, connect) under the possibly TLS one.
  beast::tcp_stream& Tcp() { return tls ? tls->next_layer() : plain; }

  // Calls f with the stream HTTP is written to and read from.
  template <class F>
  void WithStream(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(plain);
    }
  }

  // A kept-alive socket is stale when the server closed it (or sent bytes no
  // request asked for): it then polls readable. Cheaper than failing a write.
  bool Stale() {
    pollfd p{};
    p.fd = Tcp().socket().native_handle();
    p.events = POLLIN;
    return ::poll(&p, 1, 0) != 0;
  }

  void Disconnect() {
    error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
    tls.reset();
    buffer.clear();
    connected = false;
  }

  // The TLS handshake on a connected socket; Unavailable naming why it failed
  // (for an untrusted certificate, OpenSSL's verdict on it).
  Status Handshake(Clock::time_point deadline) {
    SSL* ssl = tls->native_handle();
    error_code not_ip;
    asio::ip::make_address(host, not_ip);
    // SNI names a host, never an address (RFC 6066). OpenSSL's own host
    // check (not a verify callback) leaves its verdict readable below.
    if (not_ip && !::SSL_set_tlsext_host_name(ssl, host.c_str()))
      return Status::Unavailable("cannot set the TLS server name " + host);
    if (verify_host) {
      bool set = not_ip ? ::SSL_set1_host(ssl, host.c_str()) == 1
                        : ::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl), host.c_str()) == 1;
      if (!set) return Status::Unavailable("cannot check TLS certificates against " + host);
    }
    error_code ec;
    Tcp().expires_at(deadline);
    tls->async_handshake(asio::ssl::stream_base::client, [&ec](error_code e) { ec = e; });
    Run();
    if (!ec) return Status::Ok();
    std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
    long verdict = ::SSL_get_verify_result(tls->native_handle());
    if (verdict != X509_V_OK) {
      why = "the server's certificate is not trusted: " +
            std::string(::X509_verify_cert_error_string(verdict)) +
            " (pass the engine's certificate, or its CA's, in GUST_CA_BUNDLE)";
    }
    return Status::Unavailable("TLS handshake with " + url + " failed: " + why);
  }

  Status Connect(Clock::time_point deadline) {
    if (endpoints.empty()) {
      error_code ec;
      auto address = asio::ip::make_address(host, ec);
      if (!ec) {
        endpoints.emplace_back(address, static_cast<uint16_t>(std::stoi(port)));
      } else {
        tcp::resolver resolver(io);
        auto results = resolver.resolve(host, port, ec);
        if (ec) return Status::Unavailable("cannot connect to " + url + ": " + ec.message());
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
      }
    }
    error_code ec;
    if (tls_context) tls = std::make_unique<TlsStream>(io, *tls_context);
    Tcp().expires_at(deadline);
    Tcp().async_connect(endpoints, [&ec](error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec) {
      Disconnect();
      std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
      return Status::Unavailable("cannot connect to " + url + ": " + why);
    }
    error_code ignored;
    Tcp().socket().set_option(tcp::no_delay(true), ignored);
    ApplyPeerSilenceLimit();
    if (tls) {
      Status handshake = Handshake(deadline);
      if (!handshake.ok()) {
        Disconnect();
        return handshake;
      }
    }
    connected = true;
    return Status::Ok();
  }
};

Client::Client() : impl_(std::make_unique<Impl>()) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Create(const std::string& base_url, const ClientTls& tls) {
  std::string_view url = base_url;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Status::InvalidArgument("invalid URL '" + base_url + "': expected http://host:port");
  }
  std::string scheme(url.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") {
    return Status::InvalidArgument("unsupported URL scheme '" + scheme + "' in '" + base_url +
                                   "': use http:// or https://");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix.find_first_of("?#") != std::string_view::npos) {
    return Status::InvalidArgument("invalid URL '" + base_url + "': no query or fragment allowed");
  }

  std::string_view host = authority;
  std::string_view port = scheme == "https" ? "443" : "80";
  if (!authority.empty() && authority.front() == '[') {  // [::1]:7700
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("invalid URL '" + base_url + "': unterminated IPv6 address");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::InvalidArgument("invalid URL '" + base_url + "'");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Status::InvalidArgument("invalid URL '" + base_url + "': no host");
  bool port_ok = !port.empty() && port.size() <= 5;
  for (char c : port) port_ok = port_ok && std::isdigit(static_cast<unsigned char>(c));
  if (!port_ok || std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
    return Status::InvalidArgument("invalid port '" + std::string(port) + "' in URL '" + base_url +
                                   "'");
  }

  std::unique_ptr<Client> client(new Client());
  Impl& impl = *client->impl_;
  impl.url = scheme + "://" + std::string(authority) + std::string(prefix);
  if (scheme == "https") {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    ::SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_verify_mode(asio::ssl::verify_peer);
    error_code ec;
    if (tls.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else if (!std::ifstream(tls.ca_file)) {
      return Status::InvalidArgument("cannot read the CA bundle " + tls.ca_file + ": " +
                                     std::strerror(errno));
    } else {
      ctx->load_verify_file(tls.ca_file, ec);
    }
    if (ec) {
      return Status::InvalidArgument("cannot load the CA bundle " +
                                     (tls.ca_file.empty() ? "(system)" : tls.ca_file) + ": " +
                                     ec.message());
    }
    // Trust what the file holds even when it is not a root: pointing at the
    // engine's own self-signed (or leaf) certificate is the common case.
    ::X509_VERIFY_PARAM_set_flags(::SSL_CTX_get0_param(ctx->native_handle()),
                                  X509_V_FLAG_PARTIAL_CHAIN);
    impl.tls_context = std::move(ctx);
    impl.verify_host = tls.verify_host;
  }
  impl.host = std::string(host);
  impl.port = std::string(port);
  impl.host_header = std::string(authority);
  impl.prefix = std::string(prefix);
  return client;
}

bool Client::LastRequestSent() const { return impl_->sent; }

void Client::SetCredentials(sigv4::Credentials credentials) {
  impl_->credentials = std::move(credentials);
}

void Client::SetPeerSilenceLimit(std::chrono::milliseconds silence) {
  impl_->peer_silence = silence;
}

Result<ClientResponse> Client::Do(beast_http::verb method, const std::string& target,
                                  const std::string& body,
                                  const std::map<std::string, std::string>& headers,
                                  std::chrono::milliseconds timeout) {
  Impl& impl = *impl_;
  const auto deadline = Clock::now() + timeout;
  Request request(method, impl.prefix + target, 11);
  request.set(beast_http::field::host, impl.host_header);
  request.set(beast_http::field::user_agent, "gust");
  for (const auto& [name, value] : headers) request.set(name, value);  // may say "close"
  request.body() = body;
  request.prepare_payload();
  if (impl.credentials) {
    sigv4::SignInput in;
    in.method = request.method_string();
    in.target = request.target();
    in.host = impl.host_header;
    std::string payload_hash = sigv4::Sha256Hex(body);
    in.payload_hash = payload_hash;
    if (auto type = request.find(beast_http::field::content_type); type != request.end())
      in.extra.emplace_back("content-type", std::string(type->value()));
    for (const auto& [name, value] : headers) {
      if (name.rfind("x-gust-", 0) == 0) in.extra.emplace_back(name, value);
    }
    in.now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    for (auto& [name, value] : sigv4::Sign(*impl.credentials, in)) request.set(name, value);
  }

  auto timed_out = [&] {
    return Status::Timeout("request to " + impl.url + target + " timed out after " +
                           std::to_string(timeout.count()) + " ms");
  };

  for (int attempt = 0;; ++attempt) {
    impl.sent = false;
    bool reused = impl.connected;
    if (reused && impl.Stale()) {
      impl.Disconnect();
      reused = false;
    }
    if (!impl.connected) GUST_RETURN_IF_ERROR(impl.Connect(deadline));

    error_code ec;
    impl.Tcp().expires_at(deadline);
    impl.WithStream([&](auto& stream) {
      beast_http::async_write(stream, request, [&ec](error_code e, std::size_t) { ec = e; });
    });
    impl.Run();
    if (ec) {
      impl.Disconnect();
      if (ec == beast::error::timeout) return timed_out();
      // The server closed a kept-alive connection under us: nothing was
      // answered, so sending again on a fresh connection is safe.
      if (reused && attempt == 0) continue;
      return Status::Unavailable("request to " + impl.url + target + " failed: " + ec.message());
    }

    impl.sent = true;
    beast_http::response_parser<beast_http::string_body> parser;
    // No limit on a response's size, spelled as the largest limit: Boost 1.74's
    // parser compares a Content-Length against body_limit(boost::none) as an
    // empty optional, which every length exceeds ("body limit exceeded" for a
    // body whose header arrived before its first byte).
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.header_limit(1 << 20);
    parser.skip(method == beast_http::verb::head);  // Content-Length without a body
    impl.Tcp().expires_at(deadline);
    impl.WithStream([&](auto& stream) {
      beast_http::async_read(stream, impl.buffer, parser,
                             [&ec](error_code e, std::size_t) { ec = e; });
    });
    impl.Run();
    if (ec) {
      const bool nothing_read = !parser.got_some() && impl.buffer.size() == 0;
      impl.Disconnect();
      if (ec == beast::error::timeout) return timed_out();
      const bool closed = ec == beast_http::error::end_of_stream ||
                          ec == asio::error::connection_reset || ec == asio::error::eof;
      if (reused && attempt == 0 && nothing_read && closed) continue;
      return Status::Unavailable("no response from " + impl.url + target + ": " + ec.message());
    }

    auto response = parser.release();
    ClientResponse out;
    out.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers.emplace(std::move(name), std::string(field.value()));
    }
    out.body = std::move(response.body());
    if (!response.keep_alive()) impl.Disconnect();
    return out;
  }
}

}  // namespace gust::http

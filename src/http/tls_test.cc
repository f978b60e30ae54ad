// HTTPS in the server and the client (server.h, client.h): certificates are
// made in process with OpenSSL, the server is the real one on loopback.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "http/client.h"
#include "http/server.h"

namespace gust::http {
namespace {

namespace asio = boost::asio;
using beast_http::status;
using beast_http::verb;

// A self-signed certificate for `san` ("IP:127.0.0.1,DNS:localhost") and its
// key, written as PEM files into dir; returns {cert path, key path}.
std::pair<std::string, std::string> MakeCertificate(const std::string& dir, const std::string& name,
                                                    const std::string& san) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, subject);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  X509_sign(cert, key, EVP_sha256());
  std::string cert_path = dir + "/" + name + ".crt";
  std::string key_path = dir + "/" + name + ".key";
  FILE* f = std::fopen(cert_path.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
  return {cert_path, key_path};
}

void Echo(Request&& req, Responder r) {
  r.Send(MakeResponse(status::ok,
                      std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                          r.RemoteAddress() + " " + std::to_string(req.body().size()),
                      "text/plain"));
}

// The i-th space-separated word of Echo's answer (2: the client's address).
std::string Word(const std::string& text, int i) {
  size_t begin = 0;
  for (; i > 0; --i) begin = text.find(' ', begin) + 1;
  return text.substr(begin, text.find(' ', begin) - begin);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gust-tls-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::tie(cert_, key_) = MakeCertificate(dir_, "engine", "IP:127.0.0.1,DNS:localhost");
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (io_thread_.joinable()) io_thread_.join();
    std::filesystem::remove_all(dir_);
  }

  Status StartServer(ServerOptions options) {
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<Server>(io_, options, Echo, nullptr);
    Status st = server_->Start();
    if (st.ok()) io_thread_ = std::thread([this] { io_.run(); });
    return st;
  }

  Status StartTls(int idle_timeout_s = 120) {
    ServerOptions options;
    options.tls_cert_file = cert_;
    options.tls_key_file = key_;
    options.idle_timeout_s = idle_timeout_s;
    return StartServer(options);
  }

  std::string Url(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(server_->port());
  }

  std::unique_ptr<Client> NewClient(const ClientTls& tls, const std::string& host = "127.0.0.1") {
    auto client = Client::Create(Url(host), tls);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  std::string dir_, cert_, key_;
  asio::io_context io_{1};
  std::unique_ptr<Server> server_;
  std::thread io_thread_;
};

TEST_F(TlsTest, RoundTripKeepsTheConnectionAlive) {
  ASSERT_TRUE(StartTls().ok());
  auto client = NewClient({cert_});
  auto first = client->Do(verb::post, "/a", std::string(3 << 20, 'x'));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->status, 200);
  // The body arrived whole (3 MiB through the TLS stream).
  EXPECT_NE(first->body.find(" " + std::to_string(3 << 20)), std::string::npos) << first->body;
  auto second = client->Do(verb::get, "/b");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  // Same client port: the TLS connection was kept, not renegotiated.
  EXPECT_EQ(Word(first->body, 2), Word(second->body, 2)) << first->body << " / " << second->body;
  // By DNS name too (SNI, and the certificate's DNS entry).
  auto by_name = NewClient({cert_}, "localhost")->Do(verb::get, "/c");
  ASSERT_TRUE(by_name.ok()) << by_name.status().ToString();
}

TEST_F(TlsTest, UntrustedCertificateIsRefusedWithTheReason) {
  ASSERT_TRUE(StartTls().ok());
  auto [other_cert, other_key] = MakeCertificate(dir_, "other", "IP:127.0.0.1");
  auto res = NewClient({other_cert})->Do(verb::get, "/");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kUnavailable);
  EXPECT_NE(res.status().message().find("not trusted"), std::string::npos)
      << res.status().ToString();
  EXPECT_NE(res.status().message().find("GUST_CA_BUNDLE"), std::string::npos);
  // The server is unharmed by the failed handshake.
  EXPECT_TRUE(NewClient({cert_})->Do(verb::get, "/").ok());
}

TEST_F(TlsTest, CertificateForAnotherHostIsRefusedUnlessHostCheckIsOff) {
  std::tie(cert_, key_) = MakeCertificate(dir_, "elsewhere", "DNS:gust.example");
  ASSERT_TRUE(StartTls().ok());
  auto res = NewClient({cert_})->Do(verb::get, "/");
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("mismatch"), std::string::npos) << res.status().ToString();
  auto pinned = NewClient({cert_, /*verify_host=*/false})->Do(verb::get, "/");
  ASSERT_TRUE(pinned.ok()) << pinned.status().ToString();
}

TEST_F(TlsTest, PlainHttpToTheTlsPortGetsA400NamingHttps) {
  ASSERT_TRUE(StartTls().ok());
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  asio::write(s, asio::buffer(std::string("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")));
  timeval tv{5, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(s.native_handle(), buf, sizeof buf, 0)) > 0;) answer.append(buf, n);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  EXPECT_NE(answer.find("https://"), std::string::npos) << answer;
  EXPECT_TRUE(NewClient({cert_})->Do(verb::get, "/").ok());
}

TEST_F(TlsTest, StalledHandshakeIsClosedAfterTheIdleTimeout) {
  ASSERT_TRUE(StartTls(/*idle_timeout_s=*/1).ok());
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  // Meanwhile others are served.
  EXPECT_TRUE(NewClient({cert_})->Do(verb::get, "/").ok());
  timeval tv{10, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto start = std::chrono::steady_clock::now();
  char c;
  EXPECT_EQ(::recv(s.native_handle(), &c, 1, 0), 0) << "expected the server to close";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(TlsTest, StartNamesTheFileThatCannotBeUsed) {
  ServerOptions missing;
  missing.tls_cert_file = dir_ + "/nope.crt";
  missing.tls_key_file = key_;
  Status st = StartServer(missing);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("nope.crt"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("No such file"), std::string::npos) << st.ToString();

  auto [other_cert, other_key] = MakeCertificate(dir_, "other", "IP:127.0.0.1");
  ServerOptions mismatched;
  mismatched.tls_cert_file = cert_;
  mismatched.tls_key_file = other_key;
  server_.reset();
  st = StartServer(mismatched);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find(other_key), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("mismatch"), std::string::npos) << st.ToString();

  ServerOptions not_pem;
  not_pem.tls_cert_file = key_;  // a key is not a certificate
  not_pem.tls_key_file = key_;
  server_.reset();
  st = StartServer(not_pem);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("not a PEM certificate"), std::string::npos) << st.ToString();

  ServerOptions half;
  half.tls_cert_file = cert_;
  server_.reset();
  st = StartServer(half);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("--tls-key"), std::string::npos) << st.ToString();
  server_.reset();
}

TEST_F(TlsTest, HttpsClientAgainstAPlainServerFailsClearly) {
  ASSERT_TRUE(StartServer({}).ok());
  auto res = NewClient({cert_})->Do(verb::get, "/");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kUnavailable);
  EXPECT_NE(res.status().message().find("TLS handshake with https://127.0.0.1"), std::string::npos)
      << res.status().ToString();
}

TEST(TlsClientTest, UnreadableCaBundleIsAnInvalidArgument) {
  auto client = Client::Create("https://127.0.0.1:1", {"/nonexistent/ca.pem"});
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kInvalidArgument);
  EXPECT_NE(client.status().message().find("/nonexistent/ca.pem"), std::string::npos);
  auto ftp = Client::Create("ftp://127.0.0.1:1");
  ASSERT_FALSE(ftp.ok());
  EXPECT_NE(ftp.status().message().find("https://"), std::string::npos);
}

}  // namespace
}  // namespace gust::http

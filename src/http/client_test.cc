#include "http/client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace gust::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using beast_http::verb;
using Clock = std::chrono::steady_clock;

// A hand-scripted server: each step runs on its own accepted connection, so a
// test controls exactly when connections close.
class ScriptedServer {
 public:
  using Step = std::function<void(tcp::socket&)>;

  explicit ScriptedServer(std::vector<Step> steps)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this, steps = std::move(steps)] {
      for (const auto& step : steps) {
        tcp::socket socket(io_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec) return;
        ++accepted_;
        step(socket);
      }
    });
  }
  ~ScriptedServer() {
    // close() would not wake a thread blocked in accept(); shutdown() does.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int accepted() const { return accepted_.load(); }

  // Reads one request head (the tests send no bodies); false on EOF.
  static bool ReadRequest(tcp::socket& socket, asio::streambuf& buf) {
    boost::system::error_code ec;
    size_t n = asio::read_until(socket, buf, "\r\n\r\n", ec);
    if (ec) return false;
    buf.consume(n);
    return true;
  }
  static void Reply(tcp::socket& socket, const std::string& body) {
    std::string res = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nX-Mixed-Case: Yes\r\n\r\n" + body;
    asio::write(socket, asio::buffer(res));
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

std::unique_ptr<Client> MakeClient(const std::string& url) {
  auto client = Client::Create(url);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

TEST(ClientTest, ConnectionRefusedNamesTheUrl) {
  uint16_t port;
  {
    asio::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }  // closed: nothing listens there now
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto res = MakeClient(url)->Do(verb::get, "/");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kUnavailable);
  EXPECT_EQ(res.status().message(), "cannot connect to " + url + ": Connection refused");
  // Nothing was delivered: a cluster node may try another (api/forwarder.h).
  auto client = MakeClient(url);
  ASSERT_FALSE(client->Do(verb::get, "/").ok());
  EXPECT_FALSE(client->LastRequestSent());
}

TEST(ClientTest, ParsesBaseUrls) {
  EXPECT_TRUE(Client::Create("http://127.0.0.1:7700").ok());
  EXPECT_TRUE(Client::Create("http://localhost:7700/").ok());
  EXPECT_TRUE(Client::Create("HTTP://localhost").ok());
  EXPECT_TRUE(Client::Create("http://[::1]:7700/api/").ok());
  EXPECT_TRUE(Client::Create("https://example.com").ok());  // TLS: tls_test.cc
  auto ws = Client::Create("ws://example.com");
  ASSERT_FALSE(ws.ok());
  EXPECT_EQ(ws.status().code(), Code::kInvalidArgument);
  EXPECT_NE(ws.status().message().find("ws://example.com"), std::string::npos);
  for (const char* bad : {"127.0.0.1:7700", "http://", "http://:80", "http://h:0", "http://h:99999",
                          "http://h:x1", "http://[::1", "http://h/a?b"}) {
    auto res = Client::Create(bad);
    EXPECT_FALSE(res.ok()) << bad;
    if (!res.ok()) {
      EXPECT_EQ(res.status().code(), Code::kInvalidArgument) << bad;
    }
  }
}

TEST(ClientTest, ReusesConnectionAndLowercasesHeaders) {
  ScriptedServer server({[](tcp::socket& s) {
    asio::streambuf buf;
    for (int i = 0; i < 3 && ScriptedServer::ReadRequest(s, buf); ++i) {
      ScriptedServer::Reply(s, "r" + std::to_string(i));
    }
  }});
  auto client = MakeClient(server.url());
  for (int i = 0; i < 3; ++i) {
    auto res = client->Do(verb::get, "/");
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->body, "r" + std::to_string(i));
    EXPECT_EQ(res->Header("x-mixed-case"), "Yes");
    EXPECT_EQ(res->Header("X-Mixed-Case"), "");  // lookups take lowercase names
  }
  EXPECT_EQ(server.accepted(), 1);
}

TEST(ClientTest, ReconnectsAfterServerClosedIdleConnection) {
  std::atomic<bool> closed{false};
  ScriptedServer server({
      [&](tcp::socket& s) {
        asio::streambuf buf;
        ASSERT_TRUE(ScriptedServer::ReadRequest(s, buf));
        ScriptedServer::Reply(s, "one");  // keep-alive response...
        s.close();                        // ...then an idle close
        closed = true;
      },
      [](tcp::socket& s) {
        asio::streambuf buf;
        ASSERT_TRUE(ScriptedServer::ReadRequest(s, buf));
        ScriptedServer::Reply(s, "two");
      },
  });
  auto client = MakeClient(server.url());
  auto first = client->Do(verb::get, "/");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->body, "one");
  while (!closed) std::this_thread::yield();
  auto second = client->Do(verb::post, "/", "body");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->body, "two");
  EXPECT_EQ(server.accepted(), 2);
}

TEST(ClientTest, ResendsOnceWhenKeptAliveConnectionDiesBeforeAnyResponse) {
  // The server takes the second request and closes without a byte of answer:
  // the race a keep-alive client cannot see coming.
  ScriptedServer server({
      [](tcp::socket& s) {
        asio::streambuf buf;
        ASSERT_TRUE(ScriptedServer::ReadRequest(s, buf));
        ScriptedServer::Reply(s, "one");
        ScriptedServer::ReadRequest(s, buf);
        s.close();
      },
      [](tcp::socket& s) {
        asio::streambuf buf;
        ASSERT_TRUE(ScriptedServer::ReadRequest(s, buf));
        ScriptedServer::Reply(s, "two");
      },
  });
  auto client = MakeClient(server.url());
  ASSERT_TRUE(client->Do(verb::get, "/").ok());
  auto second = client->Do(verb::get, "/");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->body, "two");
}

TEST(ClientTest, NoResendOnAFreshConnection) {
  ScriptedServer server({[](tcp::socket& s) {
    asio::streambuf buf;
    ScriptedServer::ReadRequest(s, buf);
    s.close();
  }});
  auto res = MakeClient(server.url())->Do(verb::post, "/x");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kUnavailable);
  EXPECT_EQ(res.status().message().rfind("no response from " + server.url() + "/x", 0), 0u)
      << res.status().ToString();
}

TEST(ClientTest, NoResendAfterPartialResponse) {
  ScriptedServer server({
      [](tcp::socket& s) {
        asio::streambuf buf;
        ASSERT_TRUE(ScriptedServer::ReadRequest(s, buf));
        ScriptedServer::Reply(s, "one");
        ASSERT_TRUE(ScriptedServer::ReadRequest(s, buf));
        asio::write(s, asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Le")));
        s.close();
      },
      [](tcp::socket& s) {  // must not be reached
        asio::streambuf buf;
        if (ScriptedServer::ReadRequest(s, buf)) ScriptedServer::Reply(s, "resent");
      },
  });
  auto client = MakeClient(server.url());
  ASSERT_TRUE(client->Do(verb::get, "/").ok());
  auto res = client->Do(verb::post, "/invoke");
  ASSERT_FALSE(res.ok()) << res->body;
  EXPECT_EQ(res.status().code(), Code::kUnavailable);
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_TRUE(client->LastRequestSent());  // delivered: it may have acted on it
}

TEST(ClientTest, TimesOutAndRecovers) {
  std::atomic<bool> release{false};
  ScriptedServer server({
      [&](tcp::socket& s) {
        asio::streambuf buf;
        ScriptedServer::ReadRequest(s, buf);
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      },
      [](tcp::socket& s) {
        asio::streambuf buf;
        ASSERT_TRUE(ScriptedServer::ReadRequest(s, buf));
        ScriptedServer::Reply(s, "fine");
      },
  });
  auto client = MakeClient(server.url());
  auto start = Clock::now();
  auto res = client->Do(verb::get, "/slow", "", {}, std::chrono::milliseconds(100));
  auto took = Clock::now() - start;
  release = true;
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kTimeout);
  EXPECT_EQ(res.status().message(), "request to " + server.url() + "/slow timed out after 100 ms");
  EXPECT_GE(took, std::chrono::milliseconds(100));
  EXPECT_LT(took, std::chrono::milliseconds(1000));
  auto next = client->Do(verb::get, "/");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->body, "fine");
}

TEST(ClientTest, PrefixAndHostHeader) {
  std::string seen;
  ScriptedServer server({[&](tcp::socket& s) {
    asio::streambuf buf;
    boost::system::error_code ec;
    size_t n = asio::read_until(s, buf, "\r\n\r\n", ec);
    seen.assign(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n);
    ScriptedServer::Reply(s, "ok");
  }});
  auto client = MakeClient("http://localhost:" + std::to_string(server.port()) + "/api/");
  auto res = client->Do(verb::get, "/fn?x=1");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(seen.rfind("GET /api/fn?x=1 HTTP/1.1\r\n", 0), 0u) << seen;
  EXPECT_NE(seen.find("Host: localhost:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos)
      << seen;
}

}  // namespace
}  // namespace gust::http

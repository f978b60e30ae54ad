#include "http/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "http/client.h"

namespace gust::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using beast_http::status;
using beast_http::verb;
using Clock = std::chrono::steady_clock;

// A server bug should fail a test, not hang it until ctest's timeout.
constexpr std::chrono::milliseconds kTimeout = std::chrono::seconds(10);

// Echoes "METHOD target body" so misrouted responses show.
void Echo(Request&& req, Responder r) {
  r.Send(MakeResponse(
      status::ok,
      std::string(req.method_string()) + " " + std::string(req.target()) + " " + req.body(),
      "text/plain"));
}

// A blocking raw socket for what Client cannot express (garbage, pipelining).
class RawConn {
 public:
  explicit RawConn(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};  // a broken server fails the test instead of hanging it
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void Write(const std::string& data) { asio::write(socket_, asio::buffer(data)); }
  void TryWrite(const std::string& data, boost::system::error_code& ec) {
    asio::write(socket_, asio::buffer(data), ec);
  }
  // Reads until the server closes (or the 5 s receive timeout).
  std::string ReadToEof() {
    std::string out;
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(socket_.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  // Reads until `needle` has been seen `times` times.
  std::string ReadUntil(const std::string& needle, int times = 1) {
    std::string out;
    char buf[4096];
    while (Count(out, needle) < times) {
      ssize_t n = ::recv(socket_.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  static int Count(const std::string& hay, const std::string& needle) {
    int n = 0;
    for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
      ++n;
    return n;
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
};

class ServerTest : public ::testing::Test {
 protected:
  // io_threads == 1 runs the strand-free path; more runs per-connection strands.
  void StartServer(ServerOptions options = {}, Handler handler = Echo, int io_threads = 1) {
    options.host = "127.0.0.1";
    options.port = 0;
    io_ = std::make_unique<asio::io_context>(io_threads == 1 ? 1 : io_threads);
    server_ = std::make_unique<Server>(*io_, options, std::move(handler),
                                       [this](status s, const std::string& message) {
                                         hook_calls_.push_back(s);
                                         return MakeResponse(s, "hook: " + message, "text/plain");
                                       });
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_NE(server_->port(), 0);
    for (int i = 0; i < io_threads; ++i) {
      std::promise<void> done;
      run_done_.push_back(done.get_future());
      io_threads_.emplace_back([this, d = std::move(done)]() mutable {
        io_->run();
        d.set_value();
      });
    }
  }

  // Stops the server and expects every io thread to return promptly.
  void StopServer() {
    if (!server_) return;
    server_->Stop();
    bool all_returned = true;
    for (auto& f : run_done_) {
      all_returned &= f.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    }
    if (!all_returned) io_->stop();
    for (auto& t : io_threads_) t.join();
    io_threads_.clear();
    run_done_.clear();
    EXPECT_TRUE(all_returned) << "io_context::run() did not return after Stop()";
  }

  void TearDown() override {
    for (auto& t : helpers_) t.join();
    StopServer();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  std::unique_ptr<Client> NewClient() {
    auto client = Client::Create(Url());
    EXPECT_TRUE(client.ok());
    return std::move(client).value();
  }

  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> io_threads_;
  std::vector<std::future<void>> run_done_;
  std::vector<std::thread> helpers_;
  std::vector<status> hook_calls_;  // written on the (single) io thread
};

TEST_F(ServerTest, KeepAliveReusesOneConnection) {
  StartServer({}, [](Request&&, Responder r) {
    r.Send(MakeResponse(status::ok, r.RemoteAddress(), "text/plain"));
  });
  auto client = NewClient();
  std::set<std::string> peers;
  for (int i = 0; i < 50; ++i) {
    auto res = client->Do(verb::get, "/");
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->Header("server"), "gust");
    EXPECT_EQ(res->Header("content-length"), std::to_string(res->body.size()));
    EXPECT_EQ(res->Header("connection"), "");  // HTTP/1.1 default: keep-alive
    peers.insert(res->body);
  }
  ASSERT_EQ(peers.size(), 1u);  // the same client port every time
  EXPECT_EQ(peers.begin()->rfind("127.0.0.1:", 0), 0u);
}

TEST_F(ServerTest, EchoesMethodTargetAndBody) {
  StartServer();
  auto client = NewClient();
  auto res = client->Do(verb::post, "/a/b?x=1", "payload");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->body, "POST /a/b?x=1 payload");
}

TEST_F(ServerTest, AsyncSendFromAnotherThreadAfterDelay) {
  constexpr auto kDelay = std::chrono::milliseconds(50);
  std::mutex mu;
  StartServer({}, [&](Request&&, Responder r) {
    std::lock_guard<std::mutex> lock(mu);
    helpers_.emplace_back([r, kDelay] {
      std::this_thread::sleep_for(kDelay);
      r.Send(MakeResponse(status::accepted, "late", "text/plain"));
      r.Send(MakeResponse(status::ok, "ignored", "text/plain"));  // first Send wins
    });
  });
  auto client = NewClient();
  for (int i = 0; i < 2; ++i) {  // and the connection stays usable
    auto start = Clock::now();
    auto res = client->Do(verb::get, "/", "", {}, kTimeout);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_GE(Clock::now() - start, kDelay);
    EXPECT_EQ(res->status, 202);
    EXPECT_EQ(res->body, "late");
  }
}

TEST_F(ServerTest, SlowHandlerDoesNotBlockOtherConnections) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Responder> parked;
  StartServer({}, [&](Request&& req, Responder r) {
    if (req.target() == "/slow") {
      std::lock_guard<std::mutex> lock(mu);
      parked = std::move(r);
      cv.notify_all();
      return;
    }
    Echo(std::move(req), std::move(r));
  });
  std::promise<Result<ClientResponse>> slow_result;
  helpers_.emplace_back([&, url = Url()] {
    auto client = Client::Create(url);
    slow_result.set_value((*client)->Do(verb::get, "/slow", "", {}, kTimeout));
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return parked.has_value(); }));
  }
  auto fast = NewClient()->Do(verb::get, "/fast", "", {}, kTimeout);
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ(fast->body, "GET /fast ");
  {
    std::lock_guard<std::mutex> lock(mu);
    parked->Send(MakeResponse(status::ok, "slow done", "text/plain"));
    parked.reset();
  }
  auto slow = slow_result.get_future().get();
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  EXPECT_EQ(slow->body, "slow done");
}

TEST_F(ServerTest, OversizeBodyIsRefusedWith413ThroughTheHook) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  StartServer(options);
  auto client = NewClient();
  // Far larger than the socket buffers: the server must drain it for the
  // client to read the answer instead of a reset.
  for (size_t size : {size_t{4096}, size_t{4} << 20}) {
    auto res = client->Do(verb::post, "/", std::string(size, 'x'), {}, kTimeout);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->status, 413);
    EXPECT_EQ(res->body, "hook: request body exceeds the limit of 1024 bytes");
    EXPECT_EQ(res->Header("connection"), "close");
    EXPECT_EQ(res->Header("server"), "gust");
  }
  auto ok = client->Do(verb::post, "/", std::string(1024, 'y'));  // at the limit: fine
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  StopServer();
  EXPECT_EQ(hook_calls_,
            (std::vector<status>{status::payload_too_large, status::payload_too_large}));
}

TEST_F(ServerTest, OversizeHeadersAreRefusedWith431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  StartServer(options);
  auto res = NewClient()->Do(verb::get, "/", "", {{"X-Big", std::string(4096, 'h')}});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 431);
  EXPECT_EQ(res->body, "hook: request headers exceed the limit of 1024 bytes");
}

TEST_F(ServerTest, MalformedRequestIsRefusedWith400) {
  StartServer();
  RawConn conn(server_->port());
  conn.Write("GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n");
  std::string reply = conn.ReadToEof();
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("hook: malformed request"), std::string::npos) << reply;
}

TEST_F(ServerTest, DroppedResponderAnswers500AndKeepsTheConnection) {
  StartServer({}, [](Request&& req, Responder r) {
    if (req.target() == "/ok") Echo(std::move(req), std::move(r));
    // else: dropped without Send (a handler bug)
  });
  auto client = NewClient();
  auto res = client->Do(verb::get, "/drop", "", {}, kTimeout);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(res->Header("x-amzn-errortype"), "ServiceException");
  auto ok = client->Do(verb::get, "/ok");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerTest, ThrowingHandlerAnswers500) {
  StartServer({}, [](Request&&, Responder) { throw std::runtime_error("boom"); });
  auto res = NewClient()->Do(verb::get, "/", "", {}, kTimeout);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 500);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  RawConn conn(server_->port());
  conn.Write(
      "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string reply = conn.ReadToEof();  // closes after the third
  size_t first = reply.find("GET /first ");
  size_t second = reply.find("POST /second abc");
  size_t third = reply.find("GET /third ");
  ASSERT_NE(first, std::string::npos) << reply;
  ASSERT_NE(second, std::string::npos) << reply;
  ASSERT_NE(third, std::string::npos) << reply;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  EXPECT_EQ(RawConn::Count(reply, "HTTP/1.1 200 OK"), 3);
}

TEST_F(ServerTest, Http10ClosesAfterTheResponse) {
  StartServer();
  RawConn conn(server_->port());
  conn.Write("GET /old HTTP/1.0\r\n\r\n");
  std::string reply = conn.ReadToEof();
  EXPECT_EQ(reply.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("GET /old "), std::string::npos);
}

TEST_F(ServerTest, ConnectionCloseIsHonored) {
  StartServer();
  auto res = NewClient()->Do(verb::get, "/", "", {{"Connection", "close"}});
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->Header("connection"), "close");
}

TEST_F(ServerTest, HeadResponseHasLengthButNoBody) {
  StartServer();
  auto client = NewClient();
  auto head = client->Do(verb::head, "/h");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), std::to_string(std::string("HEAD /h ").size()));
  EXPECT_EQ(head->body, "");
  auto next = client->Do(verb::get, "/g");  // no stray body bytes on the connection
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->body, "GET /g ");
}

TEST_F(ServerTest, ExpectContinueGetsInterimResponse) {
  StartServer();
  RawConn conn(server_->port());
  conn.Write("PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(conn.ReadUntil("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  conn.Write("hello");
  std::string reply = conn.ReadUntil("PUT /up hello");
  EXPECT_NE(reply.find("HTTP/1.1 200 OK"), std::string::npos) << reply;
}

TEST_F(ServerTest, IdleTimeoutClosesQuietConnection) {
  ServerOptions options;
  options.idle_timeout_s = 1;
  StartServer(options);
  RawConn conn(server_->port());
  auto start = Clock::now();
  EXPECT_EQ(conn.ReadToEof(), "");
  auto waited = Clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::milliseconds(3000));
}

TEST_F(ServerTest, TrickledHeadersAreClosedAfterTheIdleTimeout) {
  // Slowloris: a header line every 300 ms never leaves the connection quiet,
  // but the whole header must be in within the timeout.
  ServerOptions options;
  options.idle_timeout_s = 1;
  StartServer(options);
  RawConn conn(server_->port());
  conn.Write("GET /slow HTTP/1.1\r\n");
  auto start = Clock::now();
  bool closed = false;
  for (int i = 0; Clock::now() - start < std::chrono::seconds(4); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    boost::system::error_code ec;
    conn.TryWrite("X-" + std::to_string(i) + ": y\r\n", ec);
    if (ec) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed) << "the trickling client kept its connection";
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(2500));
}

TEST_F(ServerTest, OverTheConnectionCapTheLongestIdleIsClosed) {
  ServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  RawConn oldest(server_->port());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  RawConn second(server_->port());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // The third is served; the oldest idle one is closed to make room.
  RawConn third(server_->port());
  third.Write("GET /new HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(third.ReadUntil("GET /new").find("200 OK"), std::string::npos);
  auto start = Clock::now();
  EXPECT_EQ(oldest.ReadToEof(), "");
  // Closed by the server, not the 5 s receive timeout.
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  second.Write("GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(second.ReadUntil("GET /second").find("200 OK"), std::string::npos);
}

void HammerConcurrently(const std::string& url, int clients, int requests) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto client = Client::Create(url);
      if (!client.ok()) return;
      for (int i = 0; i < requests; ++i) {
        std::string target = "/c" + std::to_string(c) + "/r" + std::to_string(i);
        auto res = (*client)->Do(verb::post, target, "b", {}, kTimeout);
        if (res.ok() && res->status == 200 && res->body == "POST " + target + " b") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), clients * requests);
}

TEST_F(ServerTest, ManyConcurrentConnectionsOneIoThread) {
  StartServer({}, Echo, 1);
  HammerConcurrently(Url(), 32, 50);
}

TEST_F(ServerTest, ManyConcurrentConnectionsSeveralIoThreadsWithAsyncSends) {
  // Strand path; answers come from foreign threads half of the time.
  std::atomic<int> n{0};
  std::mutex mu;
  StartServer(
      {},
      [&](Request&& req, Responder r) {
        if (n++ % 2 == 0) return Echo(std::move(req), std::move(r));
        std::lock_guard<std::mutex> lock(mu);
        helpers_.emplace_back(
            [req = std::move(req), r]() mutable { Echo(std::move(req), std::move(r)); });
      },
      3);
  HammerConcurrently(Url(), 16, 40);
}

TEST_F(ServerTest, StopClosesConnectionsAndRunReturns) {
  StartServer();
  auto client = NewClient();
  ASSERT_TRUE(client->Do(verb::get, "/").ok());  // an idle kept-alive connection
  RawConn half(server_->port());
  half.Write("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");  // mid-request
  uint16_t port = server_->port();
  StopServer();  // fails if run() does not return
  EXPECT_EQ(half.ReadToEof(), "");
  auto res = client->Do(verb::get, "/", "", {}, std::chrono::seconds(2));
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kUnavailable);
  EXPECT_NE(res.status().message().find(std::to_string(port)), std::string::npos);
}

TEST_F(ServerTest, StartFailsWhenPortIsTaken) {
  StartServer();
  asio::io_context io;
  ServerOptions options;
  options.port = server_->port();
  Server second(io, options, Echo, nullptr);
  Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(server_->port())), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("in use"), std::string::npos) << st.ToString();
}

TEST(ServerDefaultsTest, WithoutHookRefusalsAreJson) {
  asio::io_context io(1);
  ServerOptions options;
  options.port = 0;
  options.max_body_bytes = 1;
  Server server(io, options, Echo, nullptr);
  ASSERT_TRUE(server.Start().ok());
  std::thread t([&] { io.run(); });
  auto client = Client::Create("http://127.0.0.1:" + std::to_string(server.port()));
  auto res = (*client)->Do(verb::post, "/", "too long");
  server.Stop();
  t.join();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(res->body, R"({"message":"request body exceeds the limit of 1 bytes"})");
  EXPECT_EQ(res->Header("content-type"), "application/json");
}

// A request over a unix-domain listener: answered like TCP, with the peer's
// pid and uid (SO_PEERCRED) for the handler; the socket gets unix_mode, and a
// stale file at the path does not stop a restart.
TEST(ServerUnixTest, ServesAndNamesThePeer) {
  char dir_template[] = "/tmp/gust-unix-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/engine.sock";
  ASSERT_EQ(::close(::open(path.c_str(), O_CREAT | O_WRONLY, 0600)), 0);  // stale
  asio::io_context io(1);
  ServerOptions options;
  options.unix_path = path;
  options.unix_mode = 0666;
  Server server(
      io, options,
      [](Request&& req, Responder r) {
        PeerCredentials peer = r.Peer();
        r.Send(MakeResponse(status::ok,
                            std::to_string(peer.pid) + " " + std::to_string(peer.uid) + " " +
                                r.RemoteAddress() + " " + std::string(req.target()),
                            "text/plain"));
      },
      nullptr);
  Status st = server.Start();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(server.port(), 0);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0666u);
  std::thread t([&] { io.run(); });

  asio::io_context client_io;
  asio::local::stream_protocol::socket sock(client_io);
  sock.connect(asio::local::stream_protocol::endpoint(path));
  timeval tv{5, 0};
  setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  asio::write(sock, asio::buffer(std::string("GET /x HTTP/1.1\r\nHost: l\r\n\r\n")));
  std::string reply;
  char buf[4096];
  while (reply.find("/x") == std::string::npos) {
    ssize_t n = ::recv(sock.native_handle(), buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  server.Stop();
  t.join();
  EXPECT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << reply;
  const std::string me = std::to_string(::getpid()) + " " + std::to_string(::getuid());
  EXPECT_NE(reply.find(me + " unix:pid=" + std::to_string(::getpid()) + " /x"), std::string::npos)
      << reply;
  ::unlink(path.c_str());
  ::rmdir(dir_template);
}

TEST(ServerUnixTest, TooLongAPathIsNamed) {
  asio::io_context io(1);
  ServerOptions options;
  options.unix_path = "/tmp/" + std::string(120, 'x');
  Server server(io, options, Echo, nullptr);
  Status st = server.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("at most 107 bytes"), std::string::npos) << st.ToString();
}

// A file of `size` bytes of a known pattern, unlinked at once: its descriptor
// (-1 on failure) is closed when the last copy of *owner is gone.
int PatternFile(size_t size, std::string* data, std::shared_ptr<void>* owner) {
  char path[] = "/tmp/gust-filebody-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  unlink(path);
  data->resize(size);
  for (size_t i = 0; i < size; ++i) (*data)[i] = static_cast<char>(i * 7 + i / 1000);
  if (::write(fd, data->data(), size) != static_cast<ssize_t>(size)) {
    close(fd);
    return -1;
  }
  *owner = std::shared_ptr<void>(nullptr, [fd](void*) { close(fd); });
  return fd;
}

// A handler answering every request with [3, 3 + n) of a 3 MB file (several
// 512 KB pieces), through Response::file_body; "/forged" sends the header the
// body once travelled in (x-gust-file-body, as a function's relayed answer
// could): a header is only a header, and no file is sent.
TEST_F(ServerTest, FileBodiesStreamFromTheFileAndKeepTheConnection) {
  std::string data;
  std::shared_ptr<void> owner;
  int fd = PatternFile(3 << 20, &data, &owner);
  ASSERT_GE(fd, 0);
  StartServer({}, [owner, fd](Request&& req, Responder r) {
    Response response(status::ok, 11);
    if (req.target() == "/forged") {
      response.set("x-gust-file-body", "0123456789abcdef0123456789abcdef");
      response.body() = "plain";
    } else {
      response.file_body = FileBody{owner, fd, 3, (3 << 20) - 10};
    }
    r.Send(std::move(response));
  });
  auto client = NewClient();
  auto got = client->Do(verb::get, "/f");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body.size(), data.size() - 10);
  EXPECT_TRUE(got->body == data.substr(3, data.size() - 10));
  auto head = client->Do(verb::head, "/f");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->Header("content-length"), std::to_string(data.size() - 10));
  EXPECT_EQ(head->body, "");
  auto forged = client->Do(verb::get, "/forged");  // same connection: nothing stray on it
  ASSERT_TRUE(forged.ok()) << forged.status().ToString();
  EXPECT_EQ(forged->body, "plain");
  EXPECT_EQ(forged->Header("x-gust-file-body"), "0123456789abcdef0123456789abcdef");
}

// What the body's old side table existed for (S3Api::Dispatch): the file body
// is set by code that returns only a Response, on a thread other than the
// connection's, and the response is copied and moved on its way to Send. The
// body travels with it; the server lets the file go once the write is over.
TEST_F(ServerTest, AFileBodyTravelsWithItsResponseAcrossThreads) {
  std::string data;
  std::shared_ptr<void> owner;
  int fd = PatternFile(1 << 20, &data, &owner);
  ASSERT_GE(fd, 0);
  std::weak_ptr<void> file = owner;
  auto build = [file, fd] {  // as S3Api::GetObject: headers and a file body
    Response r(status::ok, 11);
    r.set("x-object", "yes");
    r.file_body = FileBody{file.lock(), fd, 1, 700000};
    return r;
  };
  StartServer({}, [this, build](Request&& req, Responder r) {
    if (req.target() != "/object") return r.Send(MakeResponse(status::ok, "next", "text/plain"));
    helpers_.emplace_back([build, r] {  // the single io thread is the only writer
      Response built = build();
      std::function<void()> send = [r, copy = built] { r.Send(copy); };
      built = Response();
      send();
    });
  });
  auto client = NewClient();
  auto got = client->Do(verb::get, "/object");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->Header("x-object"), "yes");
  EXPECT_EQ(got->Header("content-length"), "700000");
  EXPECT_TRUE(got->body == data.substr(1, 700000));
  // The next request on the connection is read only after the write is over.
  auto next = client->Do(verb::get, "/next");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->body, "next");
  for (auto& t : helpers_) t.join();
  helpers_.clear();
  owner.reset();
  EXPECT_TRUE(file.expired()) << "a copy of the file body outlived its response";
}

// An in-process Responder gets the file's bytes read whole into the body; a
// response with a file body that is never sent lets its file go with it (the
// side table kept it open until exit).
TEST(ResponderTest, AFileBodyIsReadWholeForASinkAndDroppedWithItsResponse) {
  std::string data;
  std::shared_ptr<void> owner;
  int fd = PatternFile(100000, &data, &owner);
  ASSERT_GE(fd, 0);
  std::weak_ptr<void> watch = owner;
  Response got;
  Responder sink([&got](Response&& r) { got = std::move(r); });
  Response r(status::ok, 11);
  r.file_body = FileBody{owner, fd, 5, 1000};
  sink.Send(std::move(r));
  EXPECT_EQ(got.body(), data.substr(5, 1000));
  EXPECT_EQ(got[beast_http::field::content_length], "1000");
  EXPECT_FALSE(got.file_body.has_value());
  {
    Response unsent(status::ok, 11);
    unsent.file_body = FileBody{owner, fd, 0, 10};
  }
  owner.reset();
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace gust::http

#include "runtime/protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "runtime/python_runtime_testing.h"

namespace gust::runtime {
namespace {

using nlohmann::json;

uint32_t ReadU32(std::string_view s, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[at])) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 8) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3])) << 24);
}

Result<std::pair<FrameType, uint32_t>> Decode(std::string_view bytes,
                                              uint32_t max = kMaxFrameBody) {
  return DecodeHeader(reinterpret_cast<const uint8_t*>(bytes.data()), max);
}

// ------------------------------------------------------------------ codec

TEST(FrameCodec, EncodeFrameLayout) {
  const std::string frame = EncodeFrame(FrameType::kResult, "null");
  ASSERT_EQ(frame.size(), 12u);
  EXPECT_EQ(frame.substr(0, 8), std::string("\x04\x00\x00\x00\x0c\x00\x00\x00", 8));
  EXPECT_EQ(frame.substr(8), "null");
}

TEST(FrameCodec, LengthIsLittleEndian) {
  const std::string body(0x010203, 'x');
  const std::string frame = EncodeFrame(FrameType::kReady, body);
  EXPECT_EQ(static_cast<uint8_t>(frame[0]), 0x03);
  EXPECT_EQ(static_cast<uint8_t>(frame[1]), 0x02);
  EXPECT_EQ(static_cast<uint8_t>(frame[2]), 0x01);
  EXPECT_EQ(static_cast<uint8_t>(frame[3]), 0x00);
}

TEST(FrameCodec, HeaderRoundTripsForEveryType) {
  for (FrameType type :
       {FrameType::kInvoke, FrameType::kResume, FrameType::kReady, FrameType::kInitError,
        FrameType::kResult, FrameType::kError, FrameType::kYield}) {
    for (size_t len : {size_t{0}, size_t{1}, size_t{300}, size_t{70000}}) {
      const std::string frame = EncodeFrame(type, std::string(len, 'b'));
      auto header = Decode(frame);
      ASSERT_TRUE(header.ok()) << header.status().ToString();
      EXPECT_EQ(header->first, type);
      EXPECT_EQ(header->second, len);
    }
  }
}

TEST(FrameCodec, RejectsUnknownType) {
  const std::string header("\x00\x00\x00\x00\x07\x00\x00\x00", 8);
  auto r = Decode(header);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "unknown frame type 7");
}

TEST(FrameCodec, RejectsOversizeBody) {
  std::string header = EncodeFrame(FrameType::kResult, "").substr(0, 8);
  // Exactly at the limit is fine; one byte over is not.
  header[0] = 100;
  EXPECT_TRUE(Decode(header, 100).ok());
  header[0] = 101;
  auto r = Decode(header, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "RESULT frame body of 101 bytes exceeds the maximum of 100");
  // A garbage header claiming ~4 GB.
  const std::string huge("\xff\xff\xff\xff\x0c\x00\x00\x00", 8);
  EXPECT_EQ(Decode(huge).status().code(), Code::kInvalidArgument);
}

TEST(FrameCodec, RejectsNonZeroFlagsAndReserved) {
  std::string header = EncodeFrame(FrameType::kError, "").substr(0, 8);
  header[5] = 1;
  auto r = Decode(header);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "ERROR frame has flags 1, expected 0");
  header[5] = 0;
  header[7] = 1;
  EXPECT_EQ(Decode(header).status().code(), Code::kInvalidArgument);
}

TEST(FrameCodec, EncodeInvokeLayout) {
  InvokeMeta meta;
  meta.request_id = "rid-1";
  meta.deadline_ms = 1764000000123;
  meta.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
  meta.client_context_json = R"({"custom":{"k":"v"}})";
  const std::string payload = R"({"a": 1})";
  const std::string frame = EncodeInvoke(meta, payload);

  auto header = Decode(frame);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->first, FrameType::kInvoke);
  ASSERT_EQ(header->second, frame.size() - kFrameHeaderBytes);
  const uint32_t meta_len = ReadU32(frame, 8);
  const json doc = json::parse(frame.substr(12, meta_len));
  EXPECT_EQ(doc["request_id"], "rid-1");
  EXPECT_EQ(doc["deadline_ms"], 1764000000123);
  EXPECT_EQ(doc["invoked_function_arn"], meta.invoked_function_arn);
  EXPECT_EQ(doc["client_context"], json::parse(meta.client_context_json));
  EXPECT_EQ(frame.substr(12 + meta_len), payload);
}

TEST(FrameCodec, EncodeInvokeClientContextNullWhenEmptyOrInvalid) {
  for (const char* cc : {"", "{not json"}) {
    InvokeMeta meta;
    meta.request_id = "r";
    meta.client_context_json = cc;
    const std::string frame = EncodeInvoke(meta, "");
    const uint32_t meta_len = ReadU32(frame, 8);
    EXPECT_TRUE(json::parse(frame.substr(12, meta_len))["client_context"].is_null()) << cc;
    EXPECT_EQ(frame.size(), 12 + meta_len);  // empty payload
  }
}

TEST(FrameCodec, EncodeInvokeEscapesStrings) {
  InvokeMeta meta;
  meta.request_id = "q\"uote\\back\nline-\xc3\xa9";
  meta.invoked_function_arn = "bad-utf8-\xff";
  const std::string frame = EncodeInvoke(meta, "");
  const uint32_t meta_len = ReadU32(frame, 8);
  const json doc = json::parse(frame.substr(12, meta_len));  // valid JSON
  EXPECT_EQ(doc["request_id"], meta.request_id);
  EXPECT_EQ(doc["invoked_function_arn"], "bad-utf8-\xef\xbf\xbd");  // U+FFFD
}

TEST(FrameCodec, EncodeInvokeMarksRawAndStreamingInvocations) {
  InvokeMeta meta;
  meta.request_id = "r";
  for (bool on : {false, true}) {
    meta.raw_event = on;
    meta.stream = on;
    const std::string frame = EncodeInvoke(meta, "payload");
    const json doc = json::parse(frame.substr(12, ReadU32(frame, 8)));
    EXPECT_EQ(doc.value("raw_event", false), on);
    EXPECT_EQ(doc.value("stream", false), on);
  }
}

TEST(FrameCodec, FrameTypeNames) {
  EXPECT_EQ(FrameTypeName(FrameType::kInitError), "INIT_ERROR");
  EXPECT_EQ(FrameTypeName(FrameType::kResume), "RESUME");
  EXPECT_EQ(FrameTypeName(FrameType::kYield), "YIELD");
  EXPECT_EQ(FrameTypeName(static_cast<FrameType>(99)), "UNKNOWN(99)");
}

// ------------------------------------------------------------------ channel, fake peer

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    channel_.emplace(io_, fds[0]);
    peer_ = fds[1];
  }
  void TearDown() override {
    channel_.reset();
    if (peer_ >= 0) ::close(peer_);
  }

  void PeerWrite(std::string_view bytes) {
    ASSERT_EQ(::write(peer_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void ClosePeer() {
    ::close(peer_);
    peer_ = -1;
  }

  // Runs ReadFrame to completion.
  Result<Frame> Read() {
    std::optional<Result<Frame>> out;
    channel_->ReadFrame([&](Result<Frame> r) { out.emplace(std::move(r)); });
    io_.restart();
    io_.run_for(std::chrono::seconds(10));
    if (!out) return Status::Timeout("no frame within 10 s");
    return std::move(*out);
  }

  boost::asio::io_context io_;
  std::optional<RuntimeChannel> channel_;
  int peer_ = -1;
};

TEST_F(ChannelTest, ReadsFramesWrittenInPieces) {
  const std::string a = EncodeFrame(FrameType::kReady, R"({"init_ms": 1.5})");
  const std::string b = EncodeFrame(FrameType::kResult, "");
  PeerWrite(a.substr(0, 3));
  PeerWrite(a.substr(3, 7));
  PeerWrite(a.substr(10) + b);  // two frames back to back
  auto r = Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->type, FrameType::kReady);
  EXPECT_EQ(r->body, R"({"init_ms": 1.5})");
  r = Read();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, FrameType::kResult);
  EXPECT_EQ(r->body, "");
}

TEST_F(ChannelTest, ReadsBigFramesAndWhatFollows) {
  // Bigger than the channel's read buffer, written by a thread (the socket
  // buffer cannot hold it all), followed by a small frame in the same write.
  std::string big(3 * 1024 * 1024 + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  const std::string bytes = EncodeFrame(FrameType::kResult, big) +
                            EncodeFrame(FrameType::kError, "after") +
                            EncodeFrame(FrameType::kResult, std::string(65530, 'm'));
  std::thread writer([&] {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n =
          ::write(peer_, bytes.data() + off, std::min<size_t>(bytes.size() - off, 100000));
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  });
  auto r = Read();
  auto r2 = Read();
  auto r3 = Read();
  writer.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->type, FrameType::kResult);
  EXPECT_TRUE(r->body == big);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->type, FrameType::kError);
  EXPECT_EQ(r2->body, "after");
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(r3->body, std::string(65530, 'm'));
}

TEST_F(ChannelTest, EofIsUnavailable) {
  ClosePeer();
  auto r = Read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "runtime closed the control socket");
}

TEST_F(ChannelTest, EofMidFrameIsUnavailable) {
  PeerWrite(EncodeFrame(FrameType::kResult, "0123456789").substr(0, 12));
  ClosePeer();
  auto r = Read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "runtime closed the control socket mid-frame");
}

TEST_F(ChannelTest, BadHeaderIsInvalidArgument) {
  PeerWrite(std::string("\x00\x00\x00\x00\x2a\x00\x00\x00", 8));
  auto r = Read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "unknown frame type 42");
}

TEST_F(ChannelTest, WriteReachesPeer) {
  const std::string frame = EncodeInvoke(InvokeMeta{"r", 1, "arn", ""}, "{}");
  std::optional<Status> done;
  channel_->Write(frame, [&](const Status& s) { done = s; });
  io_.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->ok()) << done->ToString();
  std::string got(frame.size(), '\0');
  ASSERT_EQ(::read(peer_, got.data(), got.size()), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, frame);
}

TEST_F(ChannelTest, WriteToClosedPeerIsUnavailable) {
  ClosePeer();
  std::optional<Status> done;
  channel_->Write(EncodeFrame(FrameType::kInvoke, "x"), [&](const Status& s) { done = s; });
  io_.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->code(), Code::kUnavailable);
}

TEST_F(ChannelTest, CloseCompletesPendingRead) {
  std::optional<Result<Frame>> out;
  channel_->ReadFrame([&](Result<Frame> r) { out.emplace(std::move(r)); });
  io_.poll();
  EXPECT_FALSE(out.has_value());
  channel_->Close();
  EXPECT_FALSE(channel_->is_open());
  io_.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->status().code(), Code::kUnavailable);
  EXPECT_EQ(out->status().message(), "control socket closed");
  // Later operations fail the same way, asynchronously.
  auto r = Read();
  EXPECT_EQ(r.status().message(), "control socket closed");
}

TEST_F(ChannelTest, DestroyWithPendingReadDropsCallback) {
  bool called = false;
  channel_->ReadFrame([&](const Result<Frame>&) { called = true; });
  io_.poll();
  channel_.reset();
  io_.restart();
  io_.run_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(called);
}

// ------------------------------------------------------------------ channel, real Python runtime

class PythonRuntimeTest : public ::testing::Test {
 protected:
  void Start(const std::map<std::string, std::string>& files, const std::string& handler) {
    ASSERT_TRUE(process_.Start(files, handler).ok());
    channel_.emplace(io_, process_.TakeEngineFd());
  }

  Result<Frame> Read() {
    std::optional<Result<Frame>> out;
    channel_->ReadFrame([&](Result<Frame> r) { out.emplace(std::move(r)); });
    io_.restart();
    io_.run_for(std::chrono::seconds(20));
    if (!out) return Status::Timeout("no frame within 20 s");
    return std::move(*out);
  }

  Result<Frame> Invoke(const std::string& request_id, const std::string& payload) {
    InvokeMeta meta;
    meta.request_id = request_id;
    meta.deadline_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() +
                       3000;
    meta.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
    std::optional<Status> written;
    channel_->Write(EncodeInvoke(meta, payload), [&](const Status& s) { written = s; });
    auto frame = Read();
    if (!written || !written->ok()) return Status::Internal("INVOKE not written");
    return frame;
  }

  int CloseAndWait() {
    channel_.reset();
    auto code = process_.Wait(10000);
    return code.ok() ? *code : -1;
  }

  testing::PythonRuntimeProcess process_;
  boost::asio::io_context io_;
  std::optional<RuntimeChannel> channel_;
};

constexpr char kApp[] = R"(import os
COUNT = 0

class Declined(Exception):
    pass

def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("fail"):
        raise Declined("card declined")
    return {"echo": event, "rid": context.aws_request_id, "count": COUNT,
            "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 3000}
)";

TEST_F(PythonRuntimeTest, ReadyThenInvokeThenError) {
  Start({{"app.py", kApp}}, "app.handler");
  auto ready = Read();
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  ASSERT_EQ(ready->type, FrameType::kReady) << ready->body;
  EXPECT_TRUE(json::parse(ready->body)["init_ms"].is_number());

  for (int i = 1; i <= 3; ++i) {
    auto result = Invoke("rid-" + std::to_string(i), R"({"n": )" + std::to_string(i) + "}");
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->type, FrameType::kResult) << result->body;
    const json doc = json::parse(result->body);
    EXPECT_EQ(doc["echo"]["n"], i);
    EXPECT_EQ(doc["rid"], "rid-" + std::to_string(i));
    EXPECT_EQ(doc["count"], i);  // module state survives across invokes
    EXPECT_EQ(doc["remaining_ok"], true);
  }

  auto error = Invoke("rid-err", R"({"fail": true})");
  ASSERT_TRUE(error.ok()) << error.status().ToString();
  ASSERT_EQ(error->type, FrameType::kError) << error->body;
  const json err = json::parse(error->body);
  EXPECT_EQ(err["errorType"], "Declined");
  EXPECT_EQ(err["errorMessage"], "card declined");
  ASSERT_EQ(err["stackTrace"].size(), 1u);
  EXPECT_NE(err["stackTrace"][0].get<std::string>().find("raise Declined(\"card declined\")"),
            std::string::npos);

  // Non-JSON event: Runtime.UnmarshalError, and the sandbox keeps going.
  auto bad = Invoke("rid-bad", "not json");
  ASSERT_TRUE(bad.ok());
  ASSERT_EQ(bad->type, FrameType::kError);
  EXPECT_EQ(json::parse(bad->body)["errorType"], "Runtime.UnmarshalError");

  EXPECT_EQ(CloseAndWait(), 0);  // EOF on the control socket: clean exit
}

TEST_F(PythonRuntimeTest, InitErrorThenEof) {
  Start({}, "app.handler");
  auto frame = Read();
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  ASSERT_EQ(frame->type, FrameType::kInitError);
  const json err = json::parse(frame->body);
  EXPECT_EQ(err["errorType"], "Runtime.ImportModuleError");
  EXPECT_EQ(err["errorMessage"], "Unable to import module 'app': No module named 'app'");
  auto eof = Read();
  ASSERT_FALSE(eof.ok());
  EXPECT_EQ(eof.status().code(), Code::kUnavailable);
  EXPECT_EQ(eof.status().message(), "runtime closed the control socket");
  EXPECT_EQ(CloseAndWait(), 1);
}

}  // namespace
}  // namespace gust::runtime

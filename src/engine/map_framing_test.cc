#include "engine/map_framing.h"

#include <gtest/gtest.h>

#include <cstring>

namespace gust::engine {
namespace {

std::string U32(uint32_t v) {
  return std::string{static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
                     static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
}

TEST(MapFraming, ParsesAJobBody) {
  std::string body = R"({"code":"ab"})"
                     "\n" +
                     U32(3) + "abc" + U32(0) + U32(2) + "xy";
  auto job = ParseJobBody(body, 100);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->header["code"], "ab");
  EXPECT_EQ(job->tasks, (std::vector<std::string>{"abc", "", "xy"}));
}

TEST(MapFraming, NamesWhatIsMalformed) {
  EXPECT_NE(ParseJobBody("{}", 10).status().message().find("header line"), std::string::npos);
  EXPECT_NE(ParseJobBody("[1]\n", 10).status().message().find("not a JSON object"),
            std::string::npos);
  auto truncated = ParseJobBody("{}\n" + U32(5) + "ab", 10);
  EXPECT_EQ(truncated.status().code(), Code::kInvalidArgument);
  EXPECT_NE(truncated.status().message().find("task 0: 5 bytes announced, 2 present"),
            std::string::npos)
      << truncated.status().message();
  auto prefix = ParseJobBody("{}\n" + U32(1) + "a" + "zz", 10);
  EXPECT_NE(prefix.status().message().find("task 1: truncated length prefix"), std::string::npos);
  auto big = ParseJobBody("{}\n" + U32(1) + "a" + U32(11) + std::string(11, 'x'), 10);
  EXPECT_EQ(big.status().code(), Code::kTooLarge);
  EXPECT_NE(big.status().message().find("task 1 is 11 bytes; the limit is 10"), std::string::npos);
}

std::string F64(double v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);
  return out;
}

uint32_t ReadU32(std::string_view s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}

double ReadF64(std::string_view s, size_t at) {
  double v;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}

std::string Entry(uint32_t index, uint32_t status, const std::string& meta, const std::string& data,
                  double t_start = 1.0) {
  return U32(index) + U32(status) + F64(t_start) + F64(t_start + 0.5) + F64(t_start + 1) +
         U32(static_cast<uint32_t>(meta.size())) + U32(static_cast<uint32_t>(data.size())) + meta +
         data;
}

TEST(MapFraming, ChunkAndAnswerRoundTrip) {
  std::vector<std::string> payloads = {"p0", "p1", "p2"};
  std::string chunk = EncodeChunk({2, 0}, payloads);
  EXPECT_EQ(chunk, U32(2) + U32(2) + U32(2) + "p2" + U32(0) + U32(2) + "p0");
  std::string answer =
      U32(2) + U32(1500) + Entry(2, 0, "", "res", 10.0) + Entry(0, 1, R"({"error_type":"E"})", "");
  auto decoded = DecodeChunkAnswer(answer);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->exec_us, 1500u);
  ASSERT_EQ(decoded->tasks.size(), 2u);
  EXPECT_EQ(decoded->tasks[0].index, 2u);
  EXPECT_TRUE(decoded->tasks[0].ok);
  EXPECT_EQ(decoded->tasks[0].data, "res");
  EXPECT_EQ(decoded->tasks[0].meta, "");
  EXPECT_EQ(decoded->tasks[0].t_start, 10.0);
  EXPECT_EQ(decoded->tasks[0].t_setup, 10.5);
  EXPECT_EQ(decoded->tasks[0].t_done, 11.0);
  EXPECT_EQ(decoded->tasks[1].index, 0u);
  EXPECT_FALSE(decoded->tasks[1].ok);
  EXPECT_EQ(decoded->tasks[1].meta, R"({"error_type":"E"})");
}

TEST(MapFraming, RejectsMalformedAnswers) {
  std::string good = U32(1) + U32(0) + Entry(2, 0, "{}", "res");
  ASSERT_TRUE(DecodeChunkAnswer(good).ok());
  EXPECT_FALSE(DecodeChunkAnswer("").ok());
  EXPECT_FALSE(DecodeChunkAnswer(U32(0)).ok());  // no exec time
  EXPECT_FALSE(DecodeChunkAnswer(good.substr(0, good.size() - 1)).ok());
  EXPECT_FALSE(DecodeChunkAnswer(good + "x").ok());
  auto status = DecodeChunkAnswer(U32(1) + U32(0) + Entry(2, 7, "{}", ""));
  EXPECT_NE(status.status().message().find("status 7"), std::string::npos);
  // "{} " is JSON, but the result's meta splices what lies between the braces.
  for (const std::string& meta :
       std::vector<std::string>{" ", "[]", "{", R"({"a":1}x)", R"({"a":})", "nul", R"({"a":1} )",
                                " {}", std::string("{}\0\0\0\"x\":1}", 11)}) {
    auto bad = DecodeChunkAnswer(U32(1) + U32(0) + Entry(0, 0, meta, ""));
    ASSERT_FALSE(bad.ok()) << meta;
    EXPECT_NE(bad.status().message().find("not a JSON object"), std::string::npos) << meta;
  }
  // A count far larger than the bytes present fails cleanly.
  EXPECT_FALSE(DecodeChunkAnswer(U32(0xffffffff) + U32(0)).ok());
}

TEST(MapFraming, EncodesAResultWithTheWorkersFields) {
  ResultMeta m;
  m.seq = (uint64_t{1} << 32) + 7;
  m.index = 3;
  m.status = ResultStatus::kError;
  m.attempts = 2;
  m.cold = true;
  m.sandbox = "sbx-1";
  m.request_id = "r-1";
  m.t_start = 1700000000.25;
  m.t_setup = 1700000000.5;
  m.t_done = 1700000000.75;
  m.queued_ms = 1700000000125;
  m.finished_ms = 1700000001000;
  std::string r = EncodeResult(m, R"({"error_type":"KeyError"})", "d");
  std::string meta = R"({"sandbox":"sbx-1","request_id":"r-1","error_type":"KeyError"})";
  ASSERT_EQ(r.size(), kResultHeadBytes + meta.size() + 1);
  EXPECT_EQ(r.substr(0, 16), U32(7) + U32(1) + U32(3) + U32(1));
  EXPECT_EQ(ReadF64(r, 16), 1700000000.25);
  EXPECT_EQ(ReadF64(r, 24), 1700000000.5);
  EXPECT_EQ(ReadF64(r, 32), 1700000000.75);
  EXPECT_EQ(ReadF64(r, 40), 1700000000.125);
  EXPECT_EQ(ReadF64(r, 48), 1700000001.0);
  EXPECT_EQ(ReadU32(r, 56), 2u);  // attempts
  EXPECT_EQ(ReadU32(r, 60), 1u);  // cold
  EXPECT_EQ(ReadU32(r, 64), meta.size());
  EXPECT_EQ(ReadU32(r, 68), 1u);
  EXPECT_EQ(r.substr(kResultHeadBytes), meta + "d");
  EXPECT_TRUE(nlohmann::json::parse(meta).is_object());
  // No sandbox (the engine's own errors) and no members: "{}"; "{}" and ""
  // bodies add nothing.
  ResultMeta bare;
  bare.seq = 1;
  for (std::string_view body : {"", "{}", "{ }"}) {
    std::string b = EncodeResult(bare, body, "");
    EXPECT_EQ(b.substr(kResultHeadBytes), "{}") << body;
    EXPECT_EQ(ReadU32(b, 60), 0u);
  }
  m.request_id = "";
  std::string no_request = EncodeResult(m, "", "");
  EXPECT_EQ(no_request.substr(kResultHeadBytes), R"({"sandbox":"sbx-1"})");
}

TEST(MapFramingTest, AStoredResultsHeadDecodesAndATornOneIsRefused) {
  ResultMeta m;
  m.seq = (uint64_t{1} << 32) + 7;
  m.index = 3;
  m.status = ResultStatus::kCancelled;
  std::string r = EncodeResult(m, "", "data");
  auto head = DecodeResultHead(r);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->seq, m.seq);
  EXPECT_EQ(head->index, 3u);
  EXPECT_EQ(head->status, ResultStatus::kCancelled);
  EXPECT_EQ(DecodeResultHead(r.substr(0, kResultHeadBytes - 1)).status().code(),
            Code::kInvalidArgument);
  r[12] = 9;  // status 9
  auto bad = DecodeResultHead(r);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("unknown status 9"), std::string::npos);
}

}  // namespace
}  // namespace gust::engine

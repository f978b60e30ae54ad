#include "engine/map_framing.h"

#include <gtest/gtest.h>

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

TEST(MapFraming, ChunkAndAnswerRoundTrip) {
  std::vector<std::string> payloads = {"p0", "p1", "p2"};
  std::string chunk = EncodeChunk({2, 0}, payloads);
  EXPECT_EQ(chunk, U32(2) + U32(2) + U32(2) + "p2" + U32(0) + U32(2) + "p0");
  std::string meta = R"({"index":2,"status":"ok"})";
  std::string answer = U32(1) + U32(static_cast<uint32_t>(meta.size())) + meta + U32(3) + "res";
  auto decoded = DecodeChunkAnswer(answer);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ((*decoded)[0].index, 2u);
  EXPECT_EQ((*decoded)[0].data, "res");
  EXPECT_FALSE(DecodeChunkAnswer(answer.substr(0, answer.size() - 1)).ok());
  EXPECT_FALSE(DecodeChunkAnswer(answer + "x").ok());
  EXPECT_FALSE(DecodeChunkAnswer(U32(1) + U32(2) + "{}" + U32(0)).ok());  // no index
}

TEST(MapFraming, EncodesAResult) {
  std::string r = EncodeResult({{"seq", 1}}, "d");
  EXPECT_EQ(r, U32(9) + R"({"seq":1})" + U32(1) + "d");
}

}  // namespace
}  // namespace gust::engine

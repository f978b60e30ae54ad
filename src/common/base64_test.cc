#include "common/base64.h"

#include <gtest/gtest.h>

namespace gust {
namespace {

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Decode("Zm9vYmE=").value(), "fooba");
  EXPECT_EQ(Base64Decode("Zm9v\nYmFy").value(), "foobar");
}

TEST(Base64Test, RoundTripsBinary) {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes.push_back(static_cast<char>(i * 7));
  EXPECT_EQ(Base64Decode(Base64Encode(bytes)).value(), bytes);
}

TEST(Base64Test, RejectsGarbage) {
  auto r = Base64Decode("Zm9v!YmFy");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "invalid base64 character at offset 4");
  EXPECT_FALSE(Base64Decode("Zg==Zg").ok());
}

TEST(HexTest, Decodes) {
  EXPECT_EQ(HexDecode("00ff41").value(), std::string("\x00\xff\x41", 3));
  EXPECT_FALSE(HexDecode("0g").ok());
  EXPECT_FALSE(HexDecode("abc").ok());
}

}  // namespace
}  // namespace gust

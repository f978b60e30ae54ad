#include "common/ids.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace gust {
namespace {

TEST(IdsTest, RequestIdIsUuidV4) {
  std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRequestId();
    EXPECT_TRUE(std::regex_match(id, uuid)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(IdsTest, RandomHexLength) {
  EXPECT_EQ(RandomHex(4).size(), 8u);
  EXPECT_EQ(RandomHex(12).size(), 24u);
}

}  // namespace
}  // namespace gust

#include "store/bucket_grants.h"

#include <gtest/gtest.h>

namespace gust {
namespace {

TEST(BucketGrantsTest, ParsesNameAndReadOnly) {
  auto rw = ParseBucketGrant("data-1");
  ASSERT_TRUE(rw.ok()) << rw.status().ToString();
  EXPECT_EQ(*rw, (BucketGrant{"data-1", false}));
  auto ro = ParseBucketGrant("my.logs:ro");
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(*ro, (BucketGrant{"my.logs", true}));
}

TEST(BucketGrantsTest, RefusesBadNamesNamingThem) {
  for (const char* bad : {"", "ab", "Data", "-data", "data-", "data:rw", "data:ro:ro", ":ro", "a_b",
                          "da ta", "data,other"}) {
    auto g = ParseBucketGrant(bad);
    ASSERT_FALSE(g.ok()) << bad;
    EXPECT_EQ(g.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(g.status().message().find("'" + std::string(bad) + "'"), std::string::npos)
        << g.status().message();
  }
  auto list = ParseBucketGrants({"good", "Bad"});
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("'Bad'"), std::string::npos);
}

TEST(BucketGrantsTest, ListsMergeToTheWiderGrantAndSort) {
  auto g = ParseBucketGrants({"zeta:ro", "alpha:ro", "alpha", "beta:ro", "beta:ro"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(FormatBucketGrants(*g), (std::vector<std::string>{"alpha", "beta:ro", "zeta:ro"}));
  EXPECT_EQ(JoinBucketGrants(*g), "alpha,beta:ro,zeta:ro");
  EXPECT_EQ(SplitBucketGrants(JoinBucketGrants(*g)), *g);
  EXPECT_TRUE(SplitBucketGrants("").empty());
  EXPECT_EQ(SplitBucketGrants("ok1,BAD,ok2:ro"),
            (BucketGrants{{"ok1", false}, {"ok2", true}}));  // the engine's own text
}

TEST(BucketGrantsTest, AccessMatchesWholeNamesOnly) {
  auto g = ParseBucketGrants({"data", "logs:ro"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(AccessTo(*g, "data"), BucketAccess::kReadWrite);
  EXPECT_EQ(AccessTo(*g, "logs"), BucketAccess::kRead);
  EXPECT_EQ(AccessTo(*g, "dat"), BucketAccess::kNone);
  EXPECT_EQ(AccessTo(*g, "data2"), BucketAccess::kNone);
  EXPECT_EQ(AccessTo(*g, "logs:ro"), BucketAccess::kNone);
  EXPECT_EQ(AccessTo({}, "data"), BucketAccess::kNone);
}

TEST(BucketGrantsTest, WideningIsAnyBucketOrWriteNotHeld) {
  auto parent = *ParseBucketGrants({"data", "logs:ro"});
  EXPECT_EQ(FirstWidening({}, parent), std::nullopt);
  EXPECT_EQ(FirstWidening(*ParseBucketGrants({"data:ro", "logs:ro"}), parent), std::nullopt);
  EXPECT_EQ(FirstWidening(*ParseBucketGrants({"data", "logs:ro"}), parent), std::nullopt);
  EXPECT_EQ(FirstWidening(*ParseBucketGrants({"logs"}), parent), (BucketGrant{"logs", false}));
  EXPECT_EQ(FirstWidening(*ParseBucketGrants({"data", "other:ro"}), parent),
            (BucketGrant{"other", true}));
  EXPECT_EQ(FirstWidening(*ParseBucketGrants({"data"}), {}), (BucketGrant{"data", false}));
}

}  // namespace
}  // namespace gust

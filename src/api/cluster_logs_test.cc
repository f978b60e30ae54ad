// ClusterLogs' pure parts: the cursor a merged read hands back, and the merge by time of
// several nodes' entries (the node calls themselves are tests/cluster/test_drain_logs.py's).
#include "api/cluster_logs.h"

#include <gtest/gtest.h>

namespace gust::api {
namespace {

TEST(ClusterLogsTest, CursorsRoundTripAndBadOnesAreNamed) {
  auto offsets = ClusterLogs::ParseCursor("n1=812,n2=0,node.b-3=18446744073709551615");
  ASSERT_TRUE(offsets.ok()) << offsets.status().ToString();
  EXPECT_EQ(offsets->at("n1"), 812u);
  EXPECT_EQ(offsets->at("n2"), 0u);
  EXPECT_EQ(offsets->at("node.b-3"), 18446744073709551615u);
  EXPECT_EQ(ClusterLogs::FormatCursor(*offsets), "n1=812,n2=0,node.b-3=18446744073709551615");
  EXPECT_TRUE(ClusterLogs::ParseCursor("")->empty());
  for (const char* bad :
       {"n1", "=5", "n1=", "n1=-1", "n1=5x", "n1=5,,n2=1", "n1=99999999999999999999"}) {
    auto r = ClusterLogs::ParseCursor(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
}

TEST(ClusterLogsTest, MergesByTimeLabelledStableOnTies) {
  std::string merged = ClusterLogs::MergeByTime({
      {"n1", "100\tSTART a\n300\tout a\n"},
      {"n2", "200\tSTART b\n300\tout b\nnot an entry\n400\tEND b\n"},
      {"n3", ""},
  });
  EXPECT_EQ(merged,
            "100\tn1\tSTART a\n"
            "200\tn2\tSTART b\n"
            "300\tn1\tout a\n"
            "300\tn2\tout b\n"
            "400\tn2\tEND b\n");
  EXPECT_EQ(ClusterLogs::MergeByTime({}), "");
}

}  // namespace
}  // namespace gust::api

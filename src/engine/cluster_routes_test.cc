#include "engine/cluster_routes.h"

#include <gtest/gtest.h>

namespace gust::engine {
namespace {

NodeRow Row(const std::string& name, const std::string& warm, double load1 = 0.5,
            std::string state = "up", int free_slots = 100) {
  NodeRow row;
  row.info.name = name;
  row.info.advertise_url = "http://" + name + ":9000";
  row.info.cores = 2;
  row.info.load1 = load1;
  row.info.warm = warm;
  row.info.free_slots = free_slots;
  row.state = std::move(state);
  return row;
}

std::vector<std::string> Names(const std::vector<const Peer*>& chosen) {
  std::vector<std::string> out;
  for (const Peer* p : chosen) out.push_back(p->name);
  return out;
}

TEST(ClusterRoutesTest, GoesToTheNodeWithAnIdleSandboxOfTheVersion) {
  auto peers = PeersFromRows(
      {Row("n1", "{}"), Row("n2", R"({"f": {"$LATEST": 1}})"), Row("n3", R"({"f": {"3": 4}})")});
  EXPECT_EQ(Names(ChooseNodes(peers, "n1", "f", "$LATEST")), std::vector<std::string>{"n2"});
  EXPECT_EQ(Names(ChooseNodes(peers, "n1", "f", "3")), std::vector<std::string>{"n3"});
}

TEST(ClusterRoutesTest, MostIdleFirstThenLowestLoad) {
  auto peers =
      PeersFromRows({Row("n1", "{}"), Row("n2", R"({"f": {"1": 1}})", 0.1),
                     Row("n3", R"({"f": {"1": 3}})", 1.9), Row("n4", R"({"f": {"1": 1}})", 0.05)});
  EXPECT_EQ(Names(ChooseNodes(peers, "n1", "f", "1", 3)),
            (std::vector<std::string>{"n3", "n4", "n2"}));
  EXPECT_EQ(ChooseNodes(peers, "n1", "f", "1").size(), 2u);  // at most max_nodes
}

TEST(ClusterRoutesTest, SkipsNodesNotUpAndNodesWithoutFreeSlots) {
  auto peers = PeersFromRows({Row("n1", "{}"), Row("n2", R"({"f": {"1": 2}})", 0.5, "dead"),
                              Row("n3", R"({"f": {"1": 2}})", 0.5, "draining"),
                              Row("n4", R"({"f": {"1": 2}})", 0.5, "stopped"),
                              Row("n5", R"({"f": {"1": 2}})", 0.5, "up", 0)});
  EXPECT_TRUE(ChooseNodes(peers, "n1", "f", "1").empty());
}

TEST(ClusterRoutesTest, ColdStartsWhereTheLoadPerCoreIsLowestThisNodeIncluded) {
  // Nobody is warm: n3 is less loaded than this node (n1), n2 more.
  auto peers = PeersFromRows({Row("n1", "{}", 1.0), Row("n2", "{}", 1.5), Row("n3", "{}", 0.2)});
  EXPECT_EQ(Names(ChooseNodes(peers, "n1", "f", "1")), std::vector<std::string>{"n3"});
  // This node is the least loaded, or tied: run here.
  EXPECT_TRUE(ChooseNodes(peers, "n3", "f", "1").empty());
  auto tied = PeersFromRows({Row("n1", "{}", 1.0), Row("n2", "{}", 1.0)});
  EXPECT_TRUE(ChooseNodes(tied, "n1", "f", "1").empty());
  // A node that is not in the copy yet (its first heartbeat's read) runs everything here.
  EXPECT_TRUE(ChooseNodes(peers, "n9", "f", "1").empty());
}

TEST(ClusterRoutesTest, WarmCountsThatDoNotParseCountAsNone) {
  auto peers =
      PeersFromRows({Row("n1", "{}"), Row("n2", "not json"),
                     Row("n3", R"({"f": {"1": "2"}, "g": 7})"), Row("n4", R"({"f": {"1": -1}})")});
  for (const Peer& p : peers) EXPECT_TRUE(p.warm.empty()) << p.name;
  EXPECT_TRUE(ChooseNodes(peers, "n1", "f", "1").empty());
}

TEST(ClusterRoutesTest, TheOtherVersionsWarmSandboxesDoNotCount) {
  auto peers = PeersFromRows({Row("n1", "{}"), Row("n2", R"({"f": {"1": 2}, "g": {"2": 1}})")});
  EXPECT_TRUE(ChooseNodes(peers, "n1", "f", "2").empty());
  EXPECT_TRUE(ChooseNodes(peers, "n1", "g", "1").empty());
}

TEST(ClusterViewTest, NullUntilSetThenTheLatestCopy) {
  ClusterView view;
  EXPECT_EQ(view.Get(), nullptr);
  view.Set(PeersFromRows({Row("n1", "{}")}));
  auto first = view.Get();
  view.Set(PeersFromRows({Row("n1", "{}"), Row("n2", "{}")}));
  EXPECT_EQ(first->size(), 1u);  // a reader's copy stays whole
  EXPECT_EQ(view.Get()->size(), 2u);
}

TEST(ClusterRoutesTest, ADrainingNodeSendsEveryCallToAnUpNodeWarmFirst) {
  // n1 drains: a warm sandbox of its own does not keep the call, nor does a lower load.
  auto peers = PeersFromRows({Row("n1", R"({"f": {"1": 5}})", 0.0, "draining"),
                              Row("n2", "{}", 0.2), Row("n3", R"({"f": {"1": 1}})", 1.8),
                              Row("n4", R"({"f": {"1": 1}})", 0.5, "draining"),
                              Row("n5", "{}", 0.1, "dead")});
  EXPECT_TRUE(IsDraining(peers, "n1"));
  EXPECT_FALSE(IsDraining(peers, "n2"));
  EXPECT_EQ(Names(ChooseAway(peers, "n1", "f", "1")), (std::vector<std::string>{"n3", "n2"}));
  EXPECT_EQ(Names(ChooseAway(peers, "n1", "g", "1")), (std::vector<std::string>{"n2", "n3"}));
  // No node up: run here (never drop the call).
  auto alone = PeersFromRows({Row("n1", "{}", 0.0, "draining"), Row("n2", "{}", 0.1, "dead")});
  EXPECT_TRUE(ChooseAway(alone, "n1", "f", "1").empty());
}

TEST(ClusterRoutesTest, ALeaseRunsOutByTheReadsEndPlusItsDistanceFromTheDatabasesNow) {
  NodeRow live = Row("n1", "{}");
  live.deadline_in_ms = 8000;
  NodeRow lapsed = Row("n2", "{}", 0.5, "dead");
  lapsed.deadline_in_ms = -1500;
  MonoTime read_at = MonoClock::now();
  auto peers = PeersFromRows({live, lapsed}, read_at);
  EXPECT_EQ(peers[0].lapses_at, read_at + std::chrono::milliseconds(8000));
  EXPECT_EQ(peers[1].lapses_at, read_at - std::chrono::milliseconds(1500));
}

}  // namespace
}  // namespace gust::engine

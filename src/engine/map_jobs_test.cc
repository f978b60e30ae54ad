// MapJobs' lineage for the sandbox channel (api/channel_api.h): which job a
// sandbox serves (by its runtime's pid) and which jobs descend from which.
#include "engine/map_jobs.h"

#include <gtest/gtest.h>

#include "engine/testing/engine_harness.h"

namespace gust::engine {
namespace {

using testing::EngineHarness;
using testing::InvokeSeen;
using testing::Reply;
using testing::Script;

TEST(MapJobsLineageTest, SandboxJobAndDescent) {
  EngineHarness h;
  h.CreateFunction("mapper");
  Script script;
  script.handler = [](const InvokeSeen&) { return Reply::Hold(); };  // the task keeps running
  h.launcher.SetScript("mapper", script);
  MapJobs jobs(h.io, *h.invoker, /*cores=*/1);

  MapJobSpec spec;
  spec.function = "mapper";
  spec.concurrency = 1;
  const std::string parent = jobs.Create(spec, {"task"});
  ASSERT_TRUE(h.RunUntil([&] { return jobs.SandboxJob(100000).ok(); }))
      << "the fake's first sandbox (pid 100000) runs the parent's session";
  auto lineage = jobs.SandboxJob(100000);
  EXPECT_EQ(lineage->job, parent);
  EXPECT_TRUE(lineage->ancestors.empty());
  EXPECT_EQ(jobs.SandboxJob(4242).status().code(), Code::kNotFound);

  spec.ancestors = {parent};
  const std::string child = jobs.Create(spec, {"task"});
  spec.ancestors = {child, parent};
  const std::string grandchild = jobs.Create(spec, {"task"});
  spec.ancestors = {};
  const std::string stranger = jobs.Create(spec, {"task"});
  EXPECT_TRUE(*jobs.DescendsFrom(parent, parent));
  EXPECT_TRUE(*jobs.DescendsFrom(child, parent));
  EXPECT_TRUE(*jobs.DescendsFrom(grandchild, parent));
  EXPECT_TRUE(*jobs.DescendsFrom(grandchild, child));
  EXPECT_FALSE(*jobs.DescendsFrom(parent, child)) << "a child does not reach its parent";
  EXPECT_FALSE(*jobs.DescendsFrom(stranger, parent));
  EXPECT_EQ(jobs.DescendsFrom("job-none", parent).status().code(), Code::kNotFound);
  auto doc = jobs.Describe(grandchild);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["Parent"], child);
  EXPECT_EQ((*doc)["Depth"], 2);
  EXPECT_TRUE((*jobs.Describe(parent))["Parent"].is_null());
  jobs.Shutdown();
}

}  // namespace
}  // namespace gust::engine

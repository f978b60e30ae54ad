// MapJobs' lineage for the sandbox channel (api/channel_api.h): which job a
// sandbox serves (by its runtime's pid) and which jobs descend from which.
#include "engine/map_jobs.h"

#include <gtest/gtest.h>

#include "engine/map_journal.h"
#include "engine/testing/engine_harness.h"

namespace gust::engine {
namespace {

using testing::EngineHarness;
using testing::InvokeSeen;
using testing::Reply;
using testing::Script;

// Creates map function `name` whose tasks never answer (a session keeps its
// sandbox) and returns a one-sandbox job spec for it.
MapJobSpec HeldMapFunction(EngineHarness& h, const std::string& name) {
  h.CreateFunction(name);
  Script script;
  script.handler = [](const InvokeSeen&) { return Reply::Hold(); };
  h.launcher.SetScript(name, script);
  MapJobSpec spec;
  spec.function = name;
  spec.concurrency = 1;
  return spec;
}

// Starts a one-task job and waits until its session runs on the fake's first
// sandbox (pid 100000); returns the job's id.
std::string StartParent(EngineHarness& h, MapJobs& jobs, const MapJobSpec& spec) {
  std::string id = jobs.Create(spec, {"task"});
  EXPECT_TRUE(h.RunUntil([&] { return jobs.SandboxJob(100000).ok(); }))
      << "the fake's first sandbox (pid 100000) runs the parent's session";
  return id;
}

// Ends the test's jobs: every held chunk answered (a malformed answer fails
// its task, so each one-task job ends), until no session holds one, then
// shut down. A pending invocation would pin its session and job past the
// harness: a leak under ASan.
void EndJobs(EngineHarness& h, MapJobs& jobs) {
  for (int round = 0; round < 100 && !h.launcher.Holding().empty(); ++round) {
    for (const std::string& id : h.launcher.Holding()) h.launcher.Answer(id, Reply::Result(""));
    h.Settle();
  }
  EXPECT_TRUE(h.launcher.Holding().empty());
  jobs.Shutdown();
  h.invoker->Shutdown();  // its sandboxes killed while the io_context still runs
  h.Settle();
}

TEST(MapJobsLineageTest, SandboxJobAndDescent) {
  EngineHarness h;
  MapJobs jobs(h.io, *h.invoker, /*cores=*/1);
  MapJobSpec spec = HeldMapFunction(h, "mapper");
  const std::string parent = StartParent(h, jobs, spec);
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
  EndJobs(h, jobs);
}

// A map submitted from a task, with every sandbox held (here by its parent's
// session): throttled, then failed with Map.NoSandbox once it has had no
// sandbox for 10 s, instead of waiting for ever.
TEST(MapJobsLineageTest, NestedJobWithoutAnySandboxFailsWithNoSandbox) {
  EngineConfig config;
  config.max_sandboxes = 1;
  EngineHarness h(config);
  MapJobs jobs(h.io, *h.invoker, /*cores=*/1);
  const std::string parent = StartParent(h, jobs, HeldMapFunction(h, "mapper"));
  // Another map's function, as a task's own map has.
  MapJobSpec spec = HeldMapFunction(h, "child-mapper");
  spec.ancestors = {parent};
  const std::string child = jobs.Create(spec, {"a", "b"});
  h.Settle();
  h.Advance(std::chrono::seconds(5));
  EXPECT_EQ((*jobs.Describe(child))["Failed"], 0) << "still waiting within the 10 s";
  h.Advance(std::chrono::seconds(6));
  ASSERT_TRUE(h.RunUntil([&] { return (*jobs.Describe(child))["Failed"] == 2; }));
  std::shared_ptr<std::string> body;
  jobs.Results(child, 0, 0, 0, [&](Result<MapJobs::ResultBatch> batch) {
    body = std::make_shared<std::string>(batch.ok() ? batch->body : "");
  });
  ASSERT_TRUE(h.RunUntil([&] { return body != nullptr; }));
  EXPECT_NE(body->find("Map.NoSandbox"), std::string::npos);
  EXPECT_NE(body->find("--max-sandboxes"), std::string::npos);
  EXPECT_EQ((*jobs.Describe(parent))["Failed"], 0) << "a client's job waits as before";
  EndJobs(h, jobs);
}

// A job's bucket grants survive its journal record (a node taking the job over
// reads them back); a row written before grants existed reads none.
TEST(MapJournalSpecTest, BucketGrantsRoundTrip) {
  MapJobSpec spec;
  spec.buckets = {{"data", false}, {"logs", true}};
  auto back = DecodeSpec("fn", EncodeSpec(spec));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->buckets, spec.buckets);
  EXPECT_EQ(back->function, "fn");

  auto old = DecodeSpec("fn",
                        R"({"task_timeout_s": 300, "retries": 2, "chunksize": 0, "concurrency": 64,
                            "straggler_factor": 0, "ttl_s": 3600})");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_TRUE(old->buckets.empty());

  for (const char* bad : {R"("data")", R"(["Bad_Name"])", R"([7])"}) {
    auto corrupt =
        DecodeSpec("fn", std::string(R"({"task_timeout_s": 300, "retries": 2, )") +
                             R"("chunksize": 0, "concurrency": 64, )" +
                             R"("straggler_factor": 0, "ttl_s": 3600, "buckets": )" + bad + "}");
    ASSERT_FALSE(corrupt.ok()) << bad;
    EXPECT_NE(corrupt.status().message().find("buckets"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace gust::engine

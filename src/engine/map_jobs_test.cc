// MapJobs' lineage for the sandbox channel (api/channel_api.h): which job a
// sandbox serves (by its runtime's pid) and which jobs descend from which; and
// a cluster job's record (MapJobs::Recorded) against a store whose faults the
// test sets.
#include "engine/map_jobs.h"

#include <gtest/gtest.h>

#include "common/mutex.h"
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
void AnswerHeld(EngineHarness& h) {
  for (int round = 0; round < 100 && !h.launcher.Holding().empty(); ++round) {
    for (const std::string& id : h.launcher.Holding()) h.launcher.Answer(id, Reply::Result(""));
    h.Settle();
  }
  EXPECT_TRUE(h.launcher.Holding().empty());
}

void EndJobs(EngineHarness& h, MapJobs& jobs) {
  AnswerHeld(h);
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

// A MapJobStore in memory whose Create answers what the test says: the
// journal's writes as MapJobs makes them, without PostgreSQL (store_test tests
// the real one).
class RecordingStore : public MapJobStore {
 public:
  Status Create(const MapJobRow&, const std::vector<std::string>& tasks) override {
    MutexLock lock(&mu_);
    created_tasks_ = tasks.size();
    return create_status_;
  }
  Result<MapJobRow> Get(const std::string& id) override { return Status::NotFound(id); }
  Result<std::vector<std::string>> Inputs(const std::string& id) override {
    return Status::NotFound(id);
  }
  Status AppendResults(const std::string&, const std::string&, int64_t,
                       const std::vector<MapResultRow>& results) override {
    MutexLock lock(&mu_);
    appended_ += results.size();
    return Status::Ok();
  }
  Result<std::vector<MapResultRow>> Results(const std::string& id, uint64_t, size_t) override {
    return Status::NotFound(id);
  }
  Status Finish(const std::string&, const std::string&, int64_t, int64_t) override {
    return Status::Ok();
  }
  Result<bool> TakeOver(const std::string& id, const std::string&, int64_t, const std::string&,
                        int64_t) override {
    return Status::NotFound(id);
  }
  Result<std::vector<MapJobRow>> Running() override { return std::vector<MapJobRow>{}; }
  Status Delete(const std::string&) override { return Status::Ok(); }
  Result<int64_t> DeleteExpired(int64_t) override { return int64_t{0}; }

  void FailCreates(Status s) {
    MutexLock lock(&mu_);
    create_status_ = std::move(s);
  }
  size_t created_tasks() {
    MutexLock lock(&mu_);
    return created_tasks_;
  }
  size_t appended() {
    MutexLock lock(&mu_);
    return appended_;
  }

 private:
  Mutex mu_;
  Status create_status_ GUARDED_BY(mu_);
  size_t created_tasks_ GUARDED_BY(mu_) = 0;
  size_t appended_ GUARDED_BY(mu_) = 0;
};

// Reads job `id`'s results after seq 0 without waiting: the batch, or its error.
Result<MapJobs::ResultBatch> ReadNow(EngineHarness& h, MapJobs& jobs, const std::string& id) {
  std::optional<Result<MapJobs::ResultBatch>> got;
  jobs.Results(id, 0, 0, 0, [&](Result<MapJobs::ResultBatch> batch) { got = std::move(batch); });
  EXPECT_TRUE(h.RunUntil([&] { return got.has_value(); }));
  return got.has_value() ? std::move(*got) : Status::Internal("no answer");
}

// A cluster job runs while its record is written, but nothing of it is served
// (nor appended) before the record commits; then its readers get everything,
// with the owner named, and its results are appended.
TEST(MapJobsRecordTest, ResultsAreServedOnlyOnceTheJobIsRecorded) {
  EngineHarness h;
  RecordingStore store;
  MapJournal journal(h.io, store, "n1", 7);
  MapJobs jobs(h.io, *h.invoker, /*cores=*/1);
  jobs.UseJournal(&journal);
  MapJobSpec spec = HeldMapFunction(h, "mapper");
  jobs.Create(spec, {"a", "b"}, "job-1");
  ASSERT_TRUE(h.RunUntil([&] { return !h.launcher.Holding().empty(); }));
  AnswerHeld(h);  // both tasks end (failed: a malformed answer), unrecorded yet
  ASSERT_TRUE(h.RunUntil([&] { return (*jobs.Describe("job-1"))["Failed"] == 2; }));
  auto before = ReadNow(h, jobs, "job-1");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->count, 0u) << "served before its record";
  EXPECT_EQ(store.appended(), 0u) << "appended before its record";

  Status recorded = Status::Internal("unset");
  journal.Create("job-1", spec, {"a", "b"}, [&](const Status& s) {
    recorded = s;
    jobs.Recorded("job-1", s);
  });
  ASSERT_TRUE(h.RunUntil([&] { return recorded.ok() && store.appended() == 2; }));
  EXPECT_EQ(store.created_tasks(), 2u);
  auto after = ReadNow(h, jobs, "job-1");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->count, 2u);
  EXPECT_EQ(after->owner, "n1:7");
  EndJobs(h, jobs);
  journal.Shutdown();
}

// A record that fails ends the job: a reader waiting for it gets the error.
TEST(MapJobsRecordTest, AJobWhoseRecordFailsEndsWithTheErrorForItsReaders) {
  EngineHarness h;
  RecordingStore store;
  store.FailCreates(Status::Unavailable("the cluster's PostgreSQL database is unavailable"));
  MapJournal journal(h.io, store, "n1", 7);
  MapJobs jobs(h.io, *h.invoker, /*cores=*/1);
  jobs.UseJournal(&journal);
  MapJobSpec spec = HeldMapFunction(h, "mapper");
  jobs.Create(spec, {"a"}, "job-1");
  std::optional<Result<MapJobs::ResultBatch>> got;
  jobs.Results("job-1", 0, /*wait_ms=*/60'000, 0,
               [&](Result<MapJobs::ResultBatch> batch) { got = std::move(batch); });
  journal.Create("job-1", spec, {"a"}, [&](const Status& s) {
    jobs.Recorded("job-1", s.WithContext("record map job job-1"));
  });
  ASSERT_TRUE(h.RunUntil([&] { return got.has_value(); }));
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->status().code(), Code::kUnavailable);
  EXPECT_NE(got->status().message().find("record map job job-1"), std::string::npos)
      << got->status().ToString();
  EXPECT_EQ(jobs.Describe("job-1").status().code(), Code::kNotFound);
  EndJobs(h, jobs);
  journal.Shutdown();
}

}  // namespace
}  // namespace gust::engine

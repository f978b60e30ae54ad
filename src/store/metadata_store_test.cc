#include "store/metadata_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <latch>
#include <thread>

#include "store/arn.h"
#include "store/pg_schema.h"
#include "store/pg_testing.h"
#include "store/pg_util.h"
#include "store/test_util.h"

namespace gust {
namespace {

using store_testing::Backend;
using store_testing::BackendName;
using store_testing::BackendTest;
using store_testing::PgServer;
using store_testing::TempDir;

FunctionConfig MakeConfig(const std::string& name, const std::string& sha = "aaaa") {
  FunctionConfig c;
  c.name = name;
  c.handler = "app.handler";
  c.role = "arn:aws:iam::000000000000:role/r";
  c.description = "desc of " + name;
  c.memory_mb = 256;
  c.timeout_s = 30;
  c.ephemeral_storage_mb = 1024;
  c.env = {{"A", "1"}, {"B", "two"}};
  c.network = true;
  c.keep_alive_s = 600;
  c.python = "/home/u/venv/bin/python";
  c.code_sha256 = sha;
  c.code_size = 1234;
  return c;
}

InvocationRecord MakeRecord(const std::string& fn, int64_t start_ms, const std::string& id) {
  InvocationRecord r;
  r.request_id = id;
  r.function = fn;
  r.version = kLatest;
  r.start_ms = start_ms;
  r.duration_ms = 12.5;
  r.billed_ms = 13;
  r.memory_mb = 128;
  r.max_memory_used_mb = 40;
  r.init_ms = 100.25;
  r.cold = true;
  r.outcome = "Unhandled";
  r.error_type = "ValueError";
  r.sandbox_id = "sb1";
  return r;
}

// Every test of the MetadataStore contract runs against both implementations: SQLite in a
// temp dir, PostgreSQL in a fresh database of the binary's server (pg_testing.h).
class MetadataStoreTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Open();
  }
  void TearDown() override {
    store_.reset();
    BackendTest::TearDown();
  }
  // (Re)opens the test's database, as a restarted engine would.
  void Open() {
    store_.reset();
    auto r = OpenStore();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    store_ = std::move(r).value();
  }
  // Another store on the same database (for postgres: another node's connection).
  Result<std::unique_ptr<MetadataStore>> OpenStore() const {
    return backend() == Backend::kPostgres ? OpenPgMetadataStore(conninfo_)
                                           : OpenSqliteMetadataStore(DbPath());
  }
  std::string DbPath() const { return dir_ / "meta.db"; }

  std::unique_ptr<MetadataStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, MetadataStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

class SqliteMetadataStoreTest : public MetadataStoreTest {
 protected:
  Backend backend() const override { return Backend::kSqlite; }
};

class PgMetadataStoreTest : public MetadataStoreTest {
 protected:
  Backend backend() const override { return Backend::kPostgres; }
};

TEST(ArnTest, Format) {
  EXPECT_EQ(FunctionArn("f"), "arn:aws:lambda:us-east-1:000000000000:function:f");
  EXPECT_EQ(FunctionArn("f", "3"), "arn:aws:lambda:us-east-1:000000000000:function:f:3");
  EXPECT_EQ(FunctionArn("f", kLatest), "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST");
}

TEST_P(MetadataStoreTest, CreateAndGetRoundTripsEveryField) {
  FunctionConfig c = MakeConfig("f");
  c.revision_id = "rev-1";
  c.last_modified_ms = 42;
  ASSERT_TRUE(store_->CreateFunction(c).ok());
  auto got = store_->GetFunction("f", kLatest);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->name, "f");
  EXPECT_EQ(got->version, kLatest);
  EXPECT_EQ(got->runtime, "python3.11");
  EXPECT_EQ(got->handler, "app.handler");
  EXPECT_EQ(got->role, c.role);
  EXPECT_EQ(got->description, "desc of f");
  EXPECT_EQ(got->memory_mb, 256);
  EXPECT_EQ(got->timeout_s, 30);
  EXPECT_EQ(got->ephemeral_storage_mb, 1024);
  EXPECT_EQ(got->env, c.env);
  EXPECT_TRUE(got->network);
  EXPECT_EQ(got->keep_alive_s, 600);
  EXPECT_EQ(got->python, "/home/u/venv/bin/python");
  EXPECT_EQ(got->code_sha256, "aaaa");
  EXPECT_EQ(got->code_size, 1234);
  EXPECT_EQ(got->revision_id, "rev-1");
  EXPECT_EQ(got->last_modified_ms, 42);
}

TEST_P(MetadataStoreTest, CreateStampsRevisionAndTime) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  auto got = store_->GetFunction("f", "");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->revision_id.empty());
  EXPECT_GT(got->last_modified_ms, 0);
}

TEST_P(MetadataStoreTest, CreateTwiceIsConflict) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  Status s = store_->CreateFunction(MakeConfig("f"));
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "Function already exist: f");
}

TEST_P(MetadataStoreTest, NotFoundMessagesNameTheMissingThing) {
  auto missing = store_->GetFunction("nope", kLatest);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope");
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  auto version = store_->GetFunction("f", "3");
  EXPECT_EQ(version.status().code(), Code::kNotFound);
  EXPECT_EQ(version.status().message(),
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f:3");
  EXPECT_EQ(store_->UpdateLatest(MakeConfig("nope"), "").code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteFunction("nope").message(), "Function not found: " + FunctionArn("nope"));
  EXPECT_EQ(store_->PublishVersion("nope", "").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListVersions("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListAliases("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetSettings("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->PutSettings("nope", {}).code(), Code::kNotFound);
}

TEST_P(MetadataStoreTest, UpdateLatestChangesRevisionAndChecksExpected) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  FunctionConfig before = store_->GetFunction("f", kLatest).value();
  FunctionConfig changed = before;
  changed.memory_mb = 512;
  ASSERT_TRUE(store_->UpdateLatest(changed, before.revision_id).ok());
  FunctionConfig after = store_->GetFunction("f", kLatest).value();
  EXPECT_EQ(after.memory_mb, 512);
  EXPECT_NE(after.revision_id, before.revision_id);
  EXPECT_GE(after.last_modified_ms, before.last_modified_ms);

  Status stale = store_->UpdateLatest(changed, before.revision_id);
  EXPECT_EQ(stale.code(), Code::kConflict);
  EXPECT_EQ(store_->GetFunction("f", kLatest)->revision_id, after.revision_id);
  EXPECT_TRUE(store_->UpdateLatest(changed, "").ok());  // no expectation: always applies
}

TEST_P(MetadataStoreTest, ListFunctionsPagesByName) {
  for (const char* n : {"d", "b", "e", "a", "c"}) {
    ASSERT_TRUE(store_->CreateFunction(MakeConfig(n)).ok());
  }
  ASSERT_TRUE(store_->PublishVersion("a", "").ok());  // versions must not show up
  std::vector<std::string> seen;
  std::string marker;
  int pages = 0;
  do {
    auto page = store_->ListFunctions(marker, 2);
    ASSERT_TRUE(page.ok());
    for (const auto& f : page->functions) {
      EXPECT_EQ(f.version, kLatest);
      seen.push_back(f.name);
    }
    marker = page->next_marker;
    ++pages;
  } while (!marker.empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(pages, 3);
  auto all = store_->ListFunctions("", 5);
  EXPECT_EQ(all->functions.size(), 5u);
  EXPECT_TRUE(all->next_marker.empty());
}

TEST_P(MetadataStoreTest, ListFunctionsAllVersionsPagesThroughEveryVersion) {
  for (const char* n : {"a", "b"}) ASSERT_TRUE(store_->CreateFunction(MakeConfig(n)).ok());
  ASSERT_TRUE(store_->PublishVersion("a", "").ok());
  auto a = store_->GetFunction("a", kLatest);
  ASSERT_TRUE(a.ok());
  FunctionConfig changed = *a;
  changed.memory_mb = 512;
  ASSERT_TRUE(store_->UpdateLatest(changed, "").ok());
  ASSERT_TRUE(store_->PublishVersion("a", "").ok());
  std::vector<std::string> seen;
  std::string marker;
  do {
    auto page = store_->ListFunctions(marker, 2, /*all_versions=*/true);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& f : page->functions) seen.push_back(f.name + ":" + f.version);
    marker = page->next_marker;
  } while (!marker.empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"a:$LATEST", "a:1", "a:2", "b:$LATEST"}));
}

TEST_P(MetadataStoreTest, PublishNumbersVersionsAndReturnsUnchangedNewest) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  auto v1 = store_->PublishVersion("f", "first");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->version, "1");
  EXPECT_EQ(v1->description, "first");
  EXPECT_EQ(v1->code_sha256, "aaaa");

  auto again = store_->PublishVersion("f", "ignored");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, "1");
  EXPECT_EQ(again->description, "first");
  EXPECT_EQ(again->revision_id, v1->revision_id);

  // A config change (same code) makes a new version; so does a code change.
  FunctionConfig c = store_->GetFunction("f", kLatest).value();
  c.env["A"] = "changed";
  ASSERT_TRUE(store_->UpdateLatest(c, "").ok());
  EXPECT_EQ(store_->PublishVersion("f", "")->version, "2");
  c.code_sha256 = "bbbb";
  ASSERT_TRUE(store_->UpdateLatest(c, "").ok());
  auto v3 = store_->PublishVersion("f", "");
  EXPECT_EQ(v3->version, "3");
  EXPECT_EQ(v3->description, "desc of f");  // $LATEST's when none given
  EXPECT_EQ(store_->GetFunction("f", "2")->env.at("A"), "changed");
  EXPECT_EQ(store_->GetFunction("f", "1")->env.at("A"), "1");  // snapshots are immutable
}

TEST_P(MetadataStoreTest, VersionNumbersAreNeverReused) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f", "c1")).ok());
  ASSERT_EQ(store_->PublishVersion("f", "")->version, "1");
  FunctionConfig c = store_->GetFunction("f", kLatest).value();
  c.code_sha256 = "c2";
  ASSERT_TRUE(store_->UpdateLatest(c, "").ok());
  ASSERT_EQ(store_->PublishVersion("f", "")->version, "2");
  ASSERT_TRUE(store_->DeleteVersion("f", "2").ok());
  // $LATEST equals the deleted 2 but differs from the newest remaining (1).
  EXPECT_EQ(store_->PublishVersion("f", "")->version, "3");
  ASSERT_TRUE(store_->DeleteVersion("f", "3").ok());
  ASSERT_TRUE(store_->DeleteVersion("f", "1").ok());
  EXPECT_EQ(store_->PublishVersion("f", "")->version, "4");
}

TEST_P(MetadataStoreTest, ListVersionsLatestFirstThenAscending) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  for (int i = 0; i < 11; ++i) {
    FunctionConfig c = store_->GetFunction("f", kLatest).value();
    c.code_sha256 = "code" + std::to_string(i);
    ASSERT_TRUE(store_->UpdateLatest(c, "").ok());
    ASSERT_TRUE(store_->PublishVersion("f", "").ok());
  }
  auto versions = store_->ListVersions("f");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 12u);
  EXPECT_EQ((*versions)[0].version, kLatest);
  for (int i = 1; i <= 11; ++i) EXPECT_EQ((*versions)[i].version, std::to_string(i));  // 10 after 9
}

TEST_P(MetadataStoreTest, DeleteVersionRules) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  ASSERT_TRUE(store_->PublishVersion("f", "").ok());
  EXPECT_EQ(store_->DeleteVersion("f", kLatest).code(), Code::kInvalidArgument);
  Status missing = store_->DeleteVersion("f", "9");
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_EQ(missing.message(), "Function not found: " + FunctionArn("f", "9"));
  EXPECT_EQ(store_->DeleteVersion("g", "1").message(), "Function not found: " + FunctionArn("g"));

  ASSERT_TRUE(store_->CreateAlias({"f", "prod", "1", "", ""}).ok());
  ASSERT_TRUE(store_->CreateAlias({"f", "beta", "1", "", ""}).ok());
  Status pinned = store_->DeleteVersion("f", "1");
  EXPECT_EQ(pinned.code(), Code::kConflict);
  EXPECT_EQ(pinned.message(),
            "Unable to delete version because the following aliases reference it: [beta, prod]");
  EXPECT_TRUE(store_->GetFunction("f", "1").ok());
  ASSERT_TRUE(store_->DeleteAlias("f", "prod").ok());
  ASSERT_TRUE(store_->UpdateAlias({"f", "beta", kLatest, "", ""}).ok());
  EXPECT_TRUE(store_->DeleteVersion("f", "1").ok());
  EXPECT_EQ(store_->GetFunction("f", "1").status().code(), Code::kNotFound);
}

TEST_P(MetadataStoreTest, AliasLifecycleAndErrors) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  ASSERT_TRUE(store_->PublishVersion("f", "").ok());

  Status bad_target = store_->CreateAlias({"f", "prod", "7", "", ""});
  EXPECT_EQ(bad_target.code(), Code::kNotFound);
  EXPECT_EQ(bad_target.message(), "Function not found: " + FunctionArn("f", "7"));
  Status no_function = store_->CreateAlias({"g", "prod", "1", "", ""});
  EXPECT_EQ(no_function.message(), "Function not found: " + FunctionArn("g"));

  ASSERT_TRUE(store_->CreateAlias({"f", "prod", "1", "production", ""}).ok());
  ASSERT_TRUE(store_->CreateAlias({"f", "dev", kLatest, "", ""}).ok());
  Status dup = store_->CreateAlias({"f", "prod", kLatest, "", ""});
  EXPECT_EQ(dup.code(), Code::kConflict);
  EXPECT_EQ(dup.message(),
            "Alias already exists: arn:aws:lambda:us-east-1:000000000000:function:f:prod");

  auto prod = store_->GetAlias("f", "prod");
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(prod->version, "1");
  EXPECT_EQ(prod->description, "production");
  EXPECT_FALSE(prod->revision_id.empty());

  auto missing = store_->GetAlias("f", "nope");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "Alias not found: arn:aws:lambda:us-east-1:000000000000:function:f:nope");
  EXPECT_EQ(store_->UpdateAlias({"f", "nope", "1", "", ""}).message(),
            "Alias not found: " + FunctionArn("f", "nope"));
  EXPECT_EQ(store_->DeleteAlias("f", "nope").code(), Code::kNotFound);
  EXPECT_EQ(store_->UpdateAlias({"f", "prod", "5", "", ""}).message(),
            "Function not found: " + FunctionArn("f", "5"));
  EXPECT_EQ(store_->GetAlias("f", "prod")->version, "1");  // failed update changed nothing

  AliasConfig updated = prod.value();
  updated.version = kLatest;
  ASSERT_TRUE(store_->UpdateAlias(updated).ok());
  auto after = store_->GetAlias("f", "prod");
  EXPECT_EQ(after->version, kLatest);
  EXPECT_NE(after->revision_id, prod->revision_id);

  auto list = store_->ListAliases("f");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "dev");
  EXPECT_EQ((*list)[1].name, "prod");
  ASSERT_TRUE(store_->DeleteAlias("f", "dev").ok());
  EXPECT_EQ(store_->ListAliases("f")->size(), 1u);
}

TEST_P(MetadataStoreTest, DeleteFunctionRemovesEverythingButInvocations) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  ASSERT_TRUE(store_->PublishVersion("f", "").ok());
  ASSERT_TRUE(store_->CreateAlias({"f", "prod", "1", "", ""}).ok());
  ASSERT_TRUE(store_->PutSettings("f", {.reserved_concurrency = 5}).ok());
  ASSERT_TRUE(store_->RecordInvocations({MakeRecord("f", 100, "r1")}).ok());
  ASSERT_TRUE(store_->DeleteFunction("f").ok());

  EXPECT_EQ(store_->GetFunction("f", kLatest).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetFunction("f", "1").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListFunctions("", 10)->functions.size(), 0u);
  EXPECT_EQ(store_->QueryInvocations("f", 0, 10)->size(), 1u);

  // A new function of the same name starts clean.
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  EXPECT_EQ(store_->ListAliases("f")->size(), 0u);
  EXPECT_FALSE(store_->GetSettings("f")->reserved_concurrency.has_value());
  EXPECT_EQ(store_->ListVersions("f")->size(), 1u);
}

TEST_P(MetadataStoreTest, Settings) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  EXPECT_FALSE(store_->GetSettings("f")->reserved_concurrency.has_value());
  ASSERT_TRUE(store_->PutSettings("f", {.reserved_concurrency = 0}).ok());
  EXPECT_EQ(store_->GetSettings("f")->reserved_concurrency, 0);
  ASSERT_TRUE(store_->PutSettings("f", {.reserved_concurrency = 10}).ok());
  EXPECT_EQ(store_->GetSettings("f")->reserved_concurrency, 10);
  ASSERT_TRUE(store_->PutSettings("f", {}).ok());
  EXPECT_FALSE(store_->GetSettings("f")->reserved_concurrency.has_value());
}

TEST_P(MetadataStoreTest, InvocationsNewestFirstFilteredAndLimited) {
  std::vector<InvocationRecord> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(MakeRecord("f", 1000 + i, "f" + std::to_string(i)));
  for (int i = 0; i < 5; ++i) batch.push_back(MakeRecord("g", 1000 + i, "g" + std::to_string(i)));
  ASSERT_TRUE(store_->RecordInvocations(batch).ok());
  ASSERT_TRUE(store_->RecordInvocations({}).ok());

  auto f = store_->QueryInvocations("f", 0, 0);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 10u);
  EXPECT_EQ((*f)[0].request_id, "f9");
  EXPECT_EQ((*f)[9].request_id, "f0");
  const InvocationRecord& r = (*f)[0];
  EXPECT_EQ(r.function, "f");
  EXPECT_EQ(r.version, kLatest);
  EXPECT_EQ(r.start_ms, 1009);
  EXPECT_DOUBLE_EQ(r.duration_ms, 12.5);
  EXPECT_EQ(r.billed_ms, 13);
  EXPECT_EQ(r.memory_mb, 128);
  EXPECT_EQ(r.max_memory_used_mb, 40);
  EXPECT_DOUBLE_EQ(r.init_ms, 100.25);
  EXPECT_TRUE(r.cold);
  EXPECT_EQ(r.outcome, "Unhandled");
  EXPECT_EQ(r.error_type, "ValueError");
  EXPECT_EQ(r.sandbox_id, "sb1");

  EXPECT_EQ(store_->QueryInvocations("f", 1005, 0)->size(), 5u);
  auto limited = store_->QueryInvocations("f", 0, 3);
  ASSERT_EQ(limited->size(), 3u);
  EXPECT_EQ((*limited)[2].request_id, "f7");
  EXPECT_EQ(store_->QueryInvocations("", 0, 0)->size(), 15u);
  EXPECT_EQ(store_->QueryInvocations("", 1004, 0)->size(), 7u);
  EXPECT_EQ(store_->QueryInvocations("h", 0, 0)->size(), 0u);
}

TEST_P(MetadataStoreTest, SummaryCountsAndPercentiles) {
  std::vector<InvocationRecord> batch;
  for (int i = 1; i <= 100; ++i) {
    InvocationRecord r = MakeRecord("f", 2000 + i, "r" + std::to_string(i));
    r.duration_ms = i;  // 1..100 ms
    r.cold = i <= 3;
    r.outcome = i % 10 == 0 ? "Unhandled" : "Success";
    batch.push_back(r);
  }
  batch.push_back(MakeRecord("other", 2050, "x"));
  ASSERT_TRUE(store_->RecordInvocations(batch).ok());
  auto s = store_->SummarizeInvocations("f", 0);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->invocations, 100);
  EXPECT_EQ(s->errors, 10);
  EXPECT_EQ(s->cold_starts, 3);
  EXPECT_DOUBLE_EQ(s->p50_ms, 50);
  EXPECT_DOUBLE_EQ(s->p99_ms, 99);
  EXPECT_EQ(s->last_start_ms, 2100);
  auto window = store_->SummarizeInvocations("f", 2091);  // the 10 newest: 91..100 ms
  EXPECT_EQ(window->invocations, 10);
  EXPECT_DOUBLE_EQ(window->p50_ms, 95);
  EXPECT_DOUBLE_EQ(window->p99_ms, 100);
  auto none = store_->SummarizeInvocations("nobody", 0);
  EXPECT_EQ(none->invocations, 0);
  EXPECT_EQ(none->p99_ms, 0);
}

TEST_P(MetadataStoreTest, EverythingSurvivesReopen) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f", "c1")).ok());
  ASSERT_TRUE(store_->PublishVersion("f", "v1").ok());
  FunctionConfig c = store_->GetFunction("f", kLatest).value();
  c.code_sha256 = "c2";
  ASSERT_TRUE(store_->UpdateLatest(c, "").ok());
  ASSERT_TRUE(store_->PublishVersion("f", "v2").ok());
  ASSERT_TRUE(store_->DeleteVersion("f", "2").ok());
  ASSERT_TRUE(store_->CreateAlias({"f", "prod", "1", "p", ""}).ok());
  ASSERT_TRUE(store_->PutSettings("f", {.reserved_concurrency = 3}).ok());
  ASSERT_TRUE(store_->RecordInvocations({MakeRecord("f", 5, "r")}).ok());
  FunctionConfig latest = store_->GetFunction("f", kLatest).value();

  Open();
  auto got = store_->GetFunction("f", kLatest);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->code_sha256, "c2");
  EXPECT_EQ(got->revision_id, latest.revision_id);
  EXPECT_EQ(got->env, latest.env);
  EXPECT_EQ(store_->GetFunction("f", "1")->description, "v1");
  EXPECT_EQ(store_->ListVersions("f")->size(), 2u);
  EXPECT_EQ(store_->GetAlias("f", "prod")->version, "1");
  EXPECT_EQ(store_->GetSettings("f")->reserved_concurrency, 3);
  EXPECT_EQ(store_->QueryInvocations("f", 0, 0)->size(), 1u);
  EXPECT_EQ(store_->PublishVersion("f", "")->version, "3");  // the counter survived too
}

TEST_F(SqliteMetadataStoreTest, DatabaseIsWalWithSchemaVersion) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
  };
  EXPECT_EQ(scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(scalar("SELECT MAX(version) FROM schema_version"), "2");  // 2: event invoke configs
  // A database written by a newer gust is refused rather than misread.
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto r = OpenSqliteMetadataStore(DbPath());
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("schema version 99"), std::string::npos);
}

// A function stored before FunctionConfig::python existed has no "python" in
// its configuration JSON: it reads as "" (the engine's own Python), and the
// database needs no migration.
TEST_F(SqliteMetadataStoreTest, ConfigFromBeforePythonReadsTheEnginesPython) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("old")).ok());
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE versions SET config = json_remove(config, '$.python')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Open();
  auto got = store_->GetFunction("old", kLatest);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->python, "");
  EXPECT_EQ(got->handler, "app.handler");
}

TEST_F(SqliteMetadataStoreTest, OpenFailsOnUnwritablePath) {
  auto r = OpenSqliteMetadataStore(dir_ / "no/such/dir/meta.db");
  EXPECT_FALSE(r.ok());
}

TEST_P(MetadataStoreTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(store_->CreateFunction(MakeConfig(name)).ok());
        EXPECT_TRUE(store_->PublishVersion(name, "").ok());
        EXPECT_TRUE(store_->RecordInvocations({MakeRecord(name, i, name)}).ok());
        EXPECT_TRUE(store_->GetFunction(name, "1").ok());
        EXPECT_TRUE(store_->ListFunctions("", 10).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store_->ListFunctions("", 1000)->functions.size(), size_t{kThreads * kEach});
  EXPECT_EQ(store_->QueryInvocations("", 0, 0)->size(), size_t{kThreads * kEach});
}

// Runs body(i) on n threads released at once (a latch), returning each one's Status.
template <typename Body>
std::vector<Status> Race(int n, Body body) {
  std::latch start(n);
  std::vector<Status> out(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      out[static_cast<size_t>(i)] = body(i);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

// Stores on their own connections: the nodes of a cluster.
std::vector<std::unique_ptr<MetadataStore>> OpenNodes(const std::string& conninfo, int n) {
  std::vector<std::unique_ptr<MetadataStore>> nodes;
  for (int i = 0; i < n; ++i) {
    auto r = OpenPgMetadataStore(conninfo);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) nodes.push_back(std::move(r).value());
  }
  return nodes;
}

int CountOk(const std::vector<Status>& statuses) {
  return static_cast<int>(
      std::count_if(statuses.begin(), statuses.end(), [](const Status& s) { return s.ok(); }));
}

constexpr int kNodes = 4;
constexpr int kPgSchemaVersion = static_cast<int>(std::size(pg_schema::kMigrations));
constexpr int kRounds = 10;

TEST_F(PgMetadataStoreTest, RacingCreateFunctionHasOneWinner) {
  auto nodes = OpenNodes(conninfo_, kNodes);
  ASSERT_EQ(nodes.size(), size_t{kNodes});
  for (int round = 0; round < kRounds; ++round) {
    std::string name = "f" + std::to_string(round);
    auto results = Race(kNodes, [&](int i) {
      FunctionConfig c = MakeConfig(name);
      c.memory_mb = 128 + i;
      return nodes[static_cast<size_t>(i)]->CreateFunction(c);
    });
    ASSERT_EQ(CountOk(results), 1) << "round " << round;
    for (const Status& s : results) {
      if (!s.ok()) {
        EXPECT_EQ(s.message(), "Function already exist: " + name);
      }
    }
  }
  EXPECT_EQ(store_->ListFunctions("", 100)->functions.size(), size_t{kRounds});
}

TEST_F(PgMetadataStoreTest, RacingUpdateLatestWithExpectedRevisionHasOneWinner) {
  auto nodes = OpenNodes(conninfo_, kNodes);
  ASSERT_EQ(nodes.size(), size_t{kNodes});
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  for (int round = 0; round < kRounds; ++round) {
    FunctionConfig read = store_->GetFunction("f", kLatest).value();
    auto results = Race(kNodes, [&](int i) {
      FunctionConfig c = read;
      c.memory_mb = 1000 * round + i;
      return nodes[static_cast<size_t>(i)]->UpdateLatest(c, read.revision_id);
    });
    ASSERT_EQ(CountOk(results), 1) << "round " << round;
    int winner = 0;
    for (int i = 0; i < kNodes; ++i) {
      const Status& s = results[static_cast<size_t>(i)];
      if (s.ok()) {
        winner = i;
      } else {
        EXPECT_EQ(s.code(), Code::kConflict) << s.ToString();
      }
    }
    FunctionConfig after = store_->GetFunction("f", kLatest).value();
    EXPECT_EQ(after.memory_mb, 1000 * round + winner);
    EXPECT_NE(after.revision_id, read.revision_id);
  }
}

TEST_F(PgMetadataStoreTest, RacingPublishVersionMakesOneVersion) {
  auto nodes = OpenNodes(conninfo_, kNodes);
  ASSERT_EQ(nodes.size(), size_t{kNodes});
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  for (int round = 0; round < kRounds; ++round) {
    FunctionConfig c = store_->GetFunction("f", kLatest).value();
    c.code_sha256 = "code" + std::to_string(round);
    ASSERT_TRUE(store_->UpdateLatest(c, "").ok());
    std::vector<FunctionConfig> published(kNodes);
    auto results = Race(kNodes, [&](int i) {
      auto v = nodes[static_cast<size_t>(i)]->PublishVersion("f", "");
      if (v.ok()) published[static_cast<size_t>(i)] = *v;
      return v.status();
    });
    ASSERT_EQ(CountOk(results), kNodes) << "round " << round;
    // One publish made the version; the others returned it (the same revision), not a copy.
    for (const FunctionConfig& v : published) {
      EXPECT_EQ(v.version, std::to_string(round + 1));
      EXPECT_EQ(v.revision_id, published[0].revision_id);
    }
    EXPECT_EQ(store_->ListVersions("f")->size(), size_t(round + 2));
  }
}

TEST_F(PgMetadataStoreTest, SchemaVersionIsRecordedAndANewerOneRefused) {
  auto conn = pg::Connection::Open(conninfo_, "test");
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto version = (*conn)->SchemaVersion();
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, kPgSchemaVersion);
  ASSERT_TRUE((*conn)->Exec("INSERT INTO schema_version VALUES (99)").ok());
  auto r = OpenPgMetadataStore(conninfo_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("schema version 99, newer than this gust (" +
                                      std::to_string(kPgSchemaVersion) + ")"),
            std::string::npos)
      << r.status().ToString();
}

TEST_F(PgMetadataStoreTest, NodesOpeningAtOnceMigrateOnce) {
  auto fresh = PgServer::Get()->NewDatabase();
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  auto results = Race(kNodes, [&](int) { return OpenPgMetadataStore(*fresh).status(); });
  EXPECT_EQ(CountOk(results), kNodes);
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  {
    auto conn = pg::Connection::Open(*fresh, "test");
    ASSERT_TRUE(conn.ok());
    auto rows = (*conn)->Exec("SELECT COUNT(*), MAX(version) FROM schema_version");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(rows->Int(0, 0), kPgSchemaVersion);  // one row per migration
    EXPECT_EQ(rows->Int(0, 1), kPgSchemaVersion);
  }
  PgServer::Get()->DropDatabase(*fresh);
}

TEST_F(PgMetadataStoreTest, ConnectFailureNamesHostAndPortButNotThePassword) {
  for (const std::string conninfo :
       {"postgresql://gust:s3cret@127.0.0.1:1/gust",
        "host=127.0.0.1 port=1 user=gust password=s3cret dbname=gust"}) {
    auto r = OpenPgMetadataStore(conninfo);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
    EXPECT_NE(r.status().message().find("host 127.0.0.1 port 1"), std::string::npos)
        << r.status().ToString();
    EXPECT_EQ(r.status().message().find("s3cret"), std::string::npos) << r.status().ToString();
  }
  auto bad = OpenPgMetadataStore("host=127.0.0.1 no_such_option=1");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("no_such_option"), std::string::npos);
}

TEST_F(PgMetadataStoreTest, ErrorsCarryTheSqlState) {
  auto conn = pg::Connection::Open(conninfo_, "test database");
  ASSERT_TRUE(conn.ok());
  auto dup = (*conn)->Exec("INSERT INTO functions(name, next_version) VALUES ($1, 1), ($1, 1)",
                           pg::Params().Add("f"));
  EXPECT_EQ(dup.status().code(), Code::kConflict);
  EXPECT_NE(dup.status().message().find("(SQLSTATE 23505)"), std::string::npos)
      << dup.status().ToString();
  auto syntax = (*conn)->Exec("SELEC 1");
  EXPECT_EQ(syntax.status().code(), Code::kInternal);
  EXPECT_NE(syntax.status().message().find("(SQLSTATE 42601)"), std::string::npos);
}

TEST_F(PgMetadataStoreTest, ReconnectsAfterTheServerDroppedTheConnection) {
  ASSERT_TRUE(store_->CreateFunction(MakeConfig("f")).ok());
  auto conn = pg::Connection::Open(conninfo_, "test");
  ASSERT_TRUE(conn.ok());
  // The store's session is the other one of this test's (application_name, pg_testing.h).
  auto killed = (*conn)->Exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "current_setting('application_name') AND pid <> pg_backend_pid()");
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  ASSERT_EQ(killed->size(), 1);
  // The call that finds the connection dead fails as Unavailable; the next one reconnects.
  auto first = store_->GetFunction("f", kLatest);
  if (!first.ok()) {
    EXPECT_EQ(first.status().code(), Code::kUnavailable) << first.status().ToString();
  }
  auto second = store_->GetFunction("f", kLatest);
  EXPECT_TRUE(second.ok()) << second.status().ToString();
}

}  // namespace
}  // namespace gust

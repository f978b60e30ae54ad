// The PostgreSQL server of a store test binary: a gtest Environment that starts one
// scripts/pg-temp server for the whole binary and hands each test a fresh database (a schema
// t_<random>, see NewDatabase), dropped when the test is done; and BackendTest, the fixture
// that runs a store's contract tests against both SQLite and PostgreSQL.
//
// Under ctest the server is shared by every test process: the fixture store_pg_start
// (src/store/CMakeLists.txt) starts it in $GUST_TEST_PG_DIR and store_pg_stop stops it; a
// binary run by hand without that variable starts its own in a temp dir and stops it at exit.
// Without PostgreSQL's server binaries, available() is false and skip_reason() names the path
// looked in (tests GTEST_SKIP with it).
//
// The server starts on the first available() (tests of other stores in the binary do not
// pay for it). Errors: NewDatabase returns the failing step's Status. Thread-safety: none;
// called from gtest's main thread (fixtures' SetUp/TearDown and test bodies).
#pragma once

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "common/ids.h"
#include "store/node_store.h"
#include "store/pg_util.h"
#include "store/test_util.h"

namespace gust::store_testing {

class PgServer : public ::testing::Environment {
 public:
  // The one instance, registered with gtest on first use (before RUN_ALL_TESTS, from a
  // static initializer of the test file).
  static PgServer* Get() {
    static PgServer* server = [] {
      auto* s = new PgServer();
      ::testing::AddGlobalTestEnvironment(s);  // gtest owns it
      return s;
    }();
    return server;
  }

  // Nothing until a test asks (available()): tests of other stores in the binary do not
  // pay for a server.
  void SetUp() override {}

  bool available() {
    if (!started_) {
      started_ = true;
      Start();
    }
    return admin_ != nullptr;
  }

  void TearDown() override {
    admin_.reset();
    if (own_dir_ != nullptr) {
      std::string out;
      PgTemp("stop", &out);
    }
  }

  const std::string& skip_reason() const { return skip_reason_; }

  // A new empty database for one test; returns its conninfo. It is a schema of the server's
  // database, named by the conninfo's search_path, not a CREATE DATABASE: measured on this
  // 2-core machine, CREATE DATABASE took 0.7-0.9 s and DROP DATABASE up to 3.7 s (each
  // checkpoints), a schema 0.15 s, and the stores see the same thing (their tables live in
  // the first schema of the search_path). Its sessions carry application_name=NAME, so a test
  // can find (and terminate) its own connections.
  Result<std::string> NewDatabase() {
    std::string name = "t_" + RandomHex(8);
    GUST_RETURN_IF_ERROR(admin_->Exec(("CREATE SCHEMA " + name).c_str()).status());
    return base_ + "gust?application_name=" + name + "&options=-csearch_path%3D" + name;
  }

  // Drops what NewDatabase made (by its conninfo).
  void DropDatabase(const std::string& conninfo) {
    std::string name = conninfo.substr(conninfo.rfind('=') + 1);
    (void)admin_->Exec(("DROP SCHEMA IF EXISTS " + name + " CASCADE").c_str());
  }

 private:
  static constexpr const char* kBinRoot = "/usr/lib/postgresql";

  void Start() {
    std::error_code ec;
    bool have_binaries = false;
    for (const auto& entry : std::filesystem::directory_iterator(kBinRoot, ec)) {
      if (std::filesystem::exists(entry.path() / "bin" / "initdb", ec)) have_binaries = true;
    }
    if (!have_binaries) {
      skip_reason_ = std::string("PostgreSQL's server binaries are missing (looked in ") +
                     kBinRoot + "/*/bin/initdb): run scripts/install-deps";
      return;
    }
    const char* shared = std::getenv("GUST_TEST_PG_DIR");
    if (shared != nullptr && shared[0] != '\0') {
      dir_ = shared;
    } else {
      own_dir_ = std::make_unique<TempDir>();
      dir_ = own_dir_->path();
    }
    std::string out;
    if (!PgTemp("start", &out) || out.empty()) {
      skip_reason_ = "scripts/pg-temp start " + dir_ + " failed: " + out;
      ADD_FAILURE() << skip_reason_;
      return;
    }
    // "postgresql://gust@127.0.0.1:PORT/gust": keep everything up to the database name.
    base_ = out.substr(0, out.rfind('/') + 1);
    auto admin = pg::Connection::Open(base_ + "gust", "test server");
    if (!admin.ok()) {
      skip_reason_ = admin.status().ToString();
      ADD_FAILURE() << skip_reason_;
      return;
    }
    admin_ = std::move(admin).value();
  }

  // Runs scripts/pg-temp CMD dir_; its stdout (trimmed) in *out. True on exit status 0.
  bool PgTemp(const std::string& cmd, std::string* out) {
    std::string line =
        std::string(GUST_SOURCE_DIR) + "/scripts/pg-temp " + cmd + " '" + dir_ + "' 2>&1";
    FILE* p = popen(line.c_str(), "r");
    if (p == nullptr) return false;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
    int status = pclose(p);
    while (!out->empty() && (out->back() == '\n' || out->back() == ' ')) out->pop_back();
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  bool started_ = false;
  std::unique_ptr<TempDir> own_dir_;
  std::string dir_;
  std::string base_;
  std::string skip_reason_;
  std::unique_ptr<pg::Connection> admin_;
};

// Registered at static initialisation, before main() runs the tests, so that gtest calls
// TearDown (stopping a server the binary started) at exit.
inline PgServer* const registered_pg_server = PgServer::Get();

// kSqlite: the embedded implementation (SQLite; files for the BlobStore).
enum class Backend { kSqlite, kPostgres };

// A fixture parameterised over the store implementations: each test gets a temp dir (for
// SQLite's file) and, for PostgreSQL, a fresh database (conninfo_), dropped after the test.
// Without a PostgreSQL server the postgres instances are skipped with the reason.
// Instantiate with ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName.
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  // Fixtures of one backend only (TEST_F) override it.
  virtual Backend backend() const { return GetParam(); }

  void SetUp() override {
    if (backend() != Backend::kPostgres) return;
    PgServer* server = PgServer::Get();
    if (!server->available()) GTEST_SKIP() << server->skip_reason();
    auto db = server->NewDatabase();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    conninfo_ = *db;
  }
  void TearDown() override {
    if (!conninfo_.empty()) PgServer::Get()->DropDatabase(conninfo_);
  }

  TempDir dir_;
  std::string conninfo_;  // postgres: the test's database
};

// A fixture of the cluster stores (PostgreSQL only): each test's database is prepared as
// `gust cluster init` prepares one (InitPgCluster: the schema and a cluster credential).
// Subclasses open their stores in SetUp after PgClusterTest::SetUp, unless IsSkipped().
class PgClusterTest : public BackendTest {
 protected:
  Backend backend() const override { return Backend::kPostgres; }

  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || conninfo_.empty()) return;
    auto init = InitPgCluster(conninfo_, "GKTEST", "secret");
    ASSERT_TRUE(init.ok()) << init.status().ToString();
  }
};

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgres";
}

// gtest prints a parameter with it (and ctest's test names carry it).
inline void PrintTo(Backend backend, std::ostream* os) {
  *os << (backend == Backend::kSqlite ? "sqlite" : "postgres");
}

}  // namespace gust::store_testing

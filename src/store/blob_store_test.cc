#include "store/blob_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "store/pg_testing.h"
#include "store/pg_util.h"
#include "store/test_util.h"

namespace gust {
namespace {

using store_testing::Backend;
using store_testing::BackendName;
using store_testing::BackendTest;
using store_testing::TempDir;

TEST(Sha256HexTest, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(std::string_view("a\0b", 3)), Sha256Hex(std::string("a\0b", 3)));
  EXPECT_NE(Sha256Hex(std::string_view("a\0b", 3)), Sha256Hex("a"));
}

// The BlobStore contract, against the embedded store (files: the "sqlite" instances) and
// PostgreSQL (whose node cache is the same file layout, so the layout checks hold for both).
class BlobStoreTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto r = Open(dir_ / "blobs/nested");  // created if missing
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    store_ = std::move(r).value();
  }
  void TearDown() override {
    store_.reset();
    BackendTest::TearDown();
  }
  // postgres: another node's store, caching under cache_root.
  Result<std::unique_ptr<BlobStore>> Open(const std::string& cache_root) {
    return backend() == Backend::kPostgres ? OpenPgBlobStore(conninfo_, cache_root)
                                           : OpenFileBlobStore(cache_root);
  }
  int FilesUnder(const std::string& path) {
    int n = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(path)) n += e.is_regular_file();
    return n;
  }

  std::unique_ptr<BlobStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, BlobStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

class PgBlobStoreTest : public BlobStoreTest {
 protected:
  Backend backend() const override { return Backend::kPostgres; }
};

TEST_F(PgBlobStoreTest, AnotherNodeFetchesABlobOnceIntoItsCache) {
  std::string bytes(300'000, 'q');
  bytes[7] = '\0';
  auto digest = store_->Put(bytes);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  auto other = Open(dir_ / "node2");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(FilesUnder(dir_ / "node2"), 0);
  EXPECT_TRUE((*other)->Contains(*digest));  // asks PostgreSQL, fetches nothing
  EXPECT_EQ(FilesUnder(dir_ / "node2"), 0);
  auto path = (*other)->PathOf(*digest);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, dir_ / ("node2/" + digest->substr(0, 2) + "/" + *digest));
  EXPECT_EQ((*other)->Get(*digest).value(), bytes);
  EXPECT_EQ(FilesUnder(dir_ / "node2"), 1);
  // Removed everywhere: the row, and this node's copy; node2's cached copy is its own.
  ASSERT_TRUE(store_->Remove(*digest).ok());
  auto third = Open(dir_ / "node3");
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE((*third)->Contains(*digest));
  EXPECT_EQ((*third)->Get(*digest).status().code(), Code::kNotFound);
}

TEST_F(PgBlobStoreTest, ACorruptRowIsAnErrorNotWrongBytes) {
  auto digest = store_->Put("the real bundle");
  ASSERT_TRUE(digest.ok());
  auto conn = pg::Connection::Open(conninfo_, "test");
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("UPDATE blobs SET bytes = 'tampered'::bytea").ok());
  auto other = Open(dir_ / "node2");
  ASSERT_TRUE(other.ok());
  auto got = (*other)->Get(*digest);
  EXPECT_EQ(got.status().code(), Code::kInternal);
  EXPECT_NE(got.status().message().find("does not match its digest"), std::string::npos);
  EXPECT_EQ(FilesUnder(dir_ / "node2"), 0);
}

TEST_P(BlobStoreTest, PutGetRoundTripAndLayout) {
  std::string bytes("zip\0bytes", 9);
  auto digest = store_->Put(bytes);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(*digest, Sha256Hex(bytes));
  EXPECT_TRUE(store_->Contains(*digest));
  auto path = store_->PathOf(*digest);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, dir_ / ("blobs/nested/" + digest->substr(0, 2) + "/" + *digest));
  EXPECT_EQ(store_->Get(*digest).value(), bytes);
  EXPECT_EQ(FilesUnder(dir_.path()), 1);  // no temp files left behind
}

TEST_P(BlobStoreTest, PutOfExistingContentIsANoOp) {
  auto first = store_->Put("same");
  ASSERT_TRUE(first.ok());
  struct stat before;
  ASSERT_EQ(stat(store_->PathOf(*first)->c_str(), &before), 0);
  auto second = store_->Put("same");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  struct stat after;
  ASSERT_EQ(stat(store_->PathOf(*first)->c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not rewritten
  EXPECT_EQ(FilesUnder(dir_.path()), 1);
}

TEST_P(BlobStoreTest, EmptyAndLargeBlobs) {
  std::string big(5 << 20, 'x');
  big[12345] = 'y';
  auto d1 = store_->Put("");
  auto d2 = store_->Put(big);
  ASSERT_TRUE(d1.ok() && d2.ok());
  EXPECT_EQ(store_->Get(*d1).value(), "");
  EXPECT_EQ(store_->Get(*d2).value(), big);
}

TEST_P(BlobStoreTest, MissingBlobs) {
  std::string d = Sha256Hex("never stored");
  EXPECT_FALSE(store_->Contains(d));
  EXPECT_EQ(store_->Get(d).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->PathOf(d).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Remove(d).code(), Code::kNotFound);
}

TEST_P(BlobStoreTest, RejectsDigestsThatAreNotDigests) {
  // Anything else could name a path outside the store.
  for (const std::string& bad :
       std::vector<std::string>{"", "../../etc/passwd", std::string(64, 'A'), std::string(63, 'a'),
                                std::string(62, 'a') + "/."}) {
    EXPECT_FALSE(store_->Contains(bad)) << bad;
    EXPECT_EQ(store_->Get(bad).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(store_->Remove(bad).code(), Code::kInvalidArgument) << bad;
  }
}

TEST_P(BlobStoreTest, Remove) {
  auto d = store_->Put("gone soon");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(store_->Remove(*d).ok());
  EXPECT_FALSE(store_->Contains(*d));
  EXPECT_EQ(store_->Get(*d).status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->Put("gone soon").ok());  // and can come back
  EXPECT_TRUE(store_->Contains(*d));
}

TEST_P(BlobStoreTest, ConcurrentPutsOfTheSameContent) {
  std::string bytes(1 << 20, 'z');
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        auto d = store_->Put(bytes);
        EXPECT_TRUE(d.ok());
        EXPECT_EQ(store_->Get(*d).value().size(), bytes.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(FilesUnder(dir_.path()), 1);
}

TEST(OpenFileBlobStoreTest, RootThatIsAFileFails) {
  TempDir dir;
  std::string file = dir / "file";
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  EXPECT_FALSE(OpenFileBlobStore(file).ok());
}

}  // namespace
}  // namespace gust

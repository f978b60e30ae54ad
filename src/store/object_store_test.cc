#include "store/object_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/base64.h"
#include "store/test_util.h"

namespace gust {
namespace {

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenFileObjectStore(dir_ / "objects");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  }
  std::string ReadAll(const std::string& bucket, const std::string& key) {
    auto reader = store_->Open(bucket, key);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return "";
    auto data = (*reader)->Read(0, (*reader)->info().size);
    return data.ok() ? *data : "";
  }
  store_testing::TempDir dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, BucketsAreCreatedListedAndDeletedWithS3sErrors) {
  EXPECT_EQ(S3ErrorCode(store_->CreateBucket("bkt")), "BucketAlreadyOwnedByYou");
  EXPECT_EQ(S3ErrorCode(store_->CreateBucket("Bad_Name")), "InvalidBucketName");
  EXPECT_EQ(S3ErrorCode(store_->CreateBucket("..")), "InvalidBucketName");
  ASSERT_TRUE(store_->CreateBucket("another").ok());
  auto buckets = store_->ListBuckets();
  ASSERT_TRUE(buckets.ok());
  ASSERT_EQ(buckets->size(), 2u);
  EXPECT_EQ((*buckets)[0].name, "another");
  EXPECT_GT((*buckets)[0].created_ms, 0);
  ASSERT_TRUE(store_->PutObject("bkt", "k", "v", {}).ok());
  EXPECT_EQ(S3ErrorCode(store_->DeleteBucket("bkt")), "BucketNotEmpty");
  ASSERT_TRUE(store_->DeleteObject("bkt", "k").ok());
  EXPECT_TRUE(store_->DeleteBucket("bkt").ok());
  EXPECT_EQ(S3ErrorCode(store_->DeleteBucket("bkt")), "NoSuchBucket");
  EXPECT_EQ(S3ErrorCode(store_->PutObject("bkt", "k", "v", {}).status()), "NoSuchBucket");
}

TEST_F(ObjectStoreTest, ObjectsKeepTheirBytesEtagTypeAndMetadata) {
  ObjectAttributes attrs{"text/plain", {{"color", "blue"}}};
  auto info = store_->PutObject("bkt", "a/b.txt", "hello", attrs);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->etag, "5d41402abc4b2a76b9719d911017c592");  // md5("hello")
  auto reader = store_->Open("bkt", "a/b.txt");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->info().content_type, "text/plain");
  EXPECT_EQ((*reader)->info().metadata.at("color"), "blue");
  EXPECT_EQ((*reader)->info().size, 5u);
  EXPECT_EQ(*(*reader)->Read(1, 3), "ell");
  EXPECT_EQ(S3ErrorCode(store_->Open("bkt", "missing").status()), "NoSuchKey");
  EXPECT_TRUE(store_->DeleteObject("bkt", "missing").ok());  // S3: deleting nothing succeeds
  EXPECT_EQ(S3ErrorCode(store_->PutObject("bkt", std::string(1025, 'k'), "", {}).status()),
            "KeyTooLongError");
}

TEST_F(ObjectStoreTest, KeysWithAnyBytesStayInsideTheirBucket) {
  const std::string keys[] = {
      "../x", "../../../etc/passwd", "/abs", std::string("nul\0byte", 8), "\xff\xfe", "a//b/./c"};
  for (const auto& key : keys) ASSERT_TRUE(store_->PutObject("bkt", key, key, {}).ok());
  for (const auto& key : keys) EXPECT_EQ(ReadAll("bkt", key), key);
  // Nothing was written outside the store's root.
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "objects/buckets/x"));
  auto listed = store_->List("bkt", {});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->objects.size(), std::size(keys));
}

TEST_F(ObjectStoreTest, ListingRollsUpPrefixesAndPages) {
  for (const char* key : {"a/1", "a/2", "b", "c/x/1", "c/y", "d"}) {
    ASSERT_TRUE(store_->PutObject("bkt", key, "x", {}).ok());
  }
  ListOptions options;
  options.delimiter = "/";
  auto all = store_->List("bkt", options);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->common_prefixes, (std::vector<std::string>{"a/", "c/"}));
  ASSERT_EQ(all->objects.size(), 2u);
  EXPECT_FALSE(all->truncated);
  // Two entries a page: [a/, b], [c/, d].
  options.max_keys = 2;
  auto page1 = store_->List("bkt", options);
  ASSERT_TRUE(page1.ok());
  EXPECT_TRUE(page1->truncated);
  EXPECT_EQ(page1->last, "b");
  options.after = page1->last;
  auto page2 = store_->List("bkt", options);
  ASSERT_TRUE(page2.ok());
  EXPECT_EQ(page2->common_prefixes, (std::vector<std::string>{"c/"}));
  ASSERT_EQ(page2->objects.size(), 1u);
  EXPECT_EQ(page2->objects[0].key, "d");
  EXPECT_FALSE(page2->truncated);
  // A page ending on a common prefix: the next skips all of its keys.
  options = {};
  options.delimiter = "/";
  options.max_keys = 1;
  options.after = "a/";
  auto page = store_->List("bkt", options);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "b");
  options = {};
  options.prefix = "c/";
  options.delimiter = "/";
  auto nested = store_->List("bkt", options);
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->common_prefixes, (std::vector<std::string>{"c/x/"}));
  ASSERT_EQ(nested->objects.size(), 1u);
  EXPECT_EQ(nested->objects[0].key, "c/y");
}

TEST_F(ObjectStoreTest, MultipartUploadsComputeS3sEtagAndCheckParts) {
  auto id = store_->CreateUpload("bkt", "big", {"application/x-test", {}});
  ASSERT_TRUE(id.ok());
  std::string a(kMinPartBytes, 'a'), b = "tail";
  auto e2 = store_->PutPart("bkt", "big", *id, 2, b);
  auto e1 = store_->PutPart("bkt", "big", *id, 1, a);
  ASSERT_TRUE(e1.ok() && e2.ok());
  auto parts = store_->ListParts("bkt", "big", *id);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].number, 1);
  EXPECT_EQ((*parts)[1].size, 4u);
  EXPECT_EQ(S3ErrorCode(store_->CompleteUpload("bkt", "big", *id, {{2, *e2}, {1, *e1}}).status()),
            "InvalidPartOrder");
  EXPECT_EQ(S3ErrorCode(store_->CompleteUpload("bkt", "big", *id, {{1, "\"nope\""}}).status()),
            "InvalidPart");
  EXPECT_EQ(S3ErrorCode(store_->CompleteUpload("bkt", "big", *id, {{2, *e2}, {3, *e2}}).status()),
            "EntityTooSmall");
  EXPECT_EQ(S3ErrorCode(store_->PutPart("bkt", "big", "0123", 1, "x").status()), "NoSuchUpload");
  EXPECT_EQ(S3ErrorCode(store_->PutPart("bkt", "other", *id, 1, "x").status()), "NoSuchUpload");
  auto info = store_->CompleteUpload("bkt", "big", *id, {{1, "\"" + *e1 + "\""}, {2, *e2}});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::string md5s = *HexDecode(*e1) + *HexDecode(*e2);
  EXPECT_EQ(info->etag, Md5Hex(md5s) + "-2");
  EXPECT_EQ(info->content_type, "application/x-test");
  EXPECT_EQ(ReadAll("bkt", "big"), a + b);
  EXPECT_EQ(S3ErrorCode(store_->ListParts("bkt", "big", *id).status()), "NoSuchUpload");
  auto aborted = store_->CreateUpload("bkt", "gone", {});
  ASSERT_TRUE(aborted.ok());
  ASSERT_TRUE(store_->AbortUpload("bkt", "gone", *aborted).ok());
  EXPECT_EQ(S3ErrorCode(store_->PutPart("bkt", "gone", *aborted, 1, "x").status()), "NoSuchUpload");
}

TEST_F(ObjectStoreTest, CopyKeepsOrReplacesAttributes) {
  ASSERT_TRUE(store_->PutObject("bkt", "src", "data", {"text/x", {{"k", "v"}}}).ok());
  auto kept = store_->CopyObject("bkt", "src", "bkt", "dst", nullptr);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->metadata.at("k"), "v");
  EXPECT_EQ(ReadAll("bkt", "dst"), "data");
  ObjectAttributes replaced{"text/y", {}};
  auto info = store_->CopyObject("bkt", "src", "bkt", "dst2", &replaced);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->content_type, "text/y");
  EXPECT_TRUE(info->metadata.empty());
  EXPECT_EQ(S3ErrorCode(store_->CopyObject("bkt", "nope", "bkt", "d", nullptr).status()),
            "NoSuchKey");
}

TEST_F(ObjectStoreTest, ReopeningRemovesWhatACrashLeftAndKeepsObjects) {
  ASSERT_TRUE(store_->PutObject("bkt", "k", "v", {}).ok());
  std::string stray = dir_ / "objects/buckets/bkt/tmp/half-written";
  { std::ofstream(stray) << "torn"; }
  auto reopened = OpenFileObjectStore(dir_ / "objects");
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE(std::filesystem::exists(stray));
  auto reader = (*reopened)->Open("bkt", "k");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*(*reader)->Read(0, 1), "v");
}

}  // namespace
}  // namespace gust

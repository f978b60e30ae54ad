// ObjectStore: S3's data model (buckets of objects named by keys, multipart
// uploads) behind an interface, so the HTTP side (src/api/s3_api.h) does not
// know where objects live. The file implementation keeps them under one
// directory of the state dir (docs/STORAGE.md); a cluster implementation comes
// later (docs/CLUSTER.md "Objects").
//
// Names: a bucket name is S3's (3-63 of a-z 0-9 . -, starting and ending with
// a letter or digit); a key is 1-1024 bytes of anything. Keys never become
// paths: an object's file is named by the SHA-256 of its key, so "../x" stays
// inside its bucket.
//
// Durability: every object, part and completed upload is written to a temp
// file, fsynced and renamed into place (then the directory fsynced): after a
// kill -9 a key holds its old object or its new one, never a torn one. Temp
// files a crash left are removed when the store is opened.
//
// Errors: a Status whose message starts with S3's error code and a colon
// ("NoSuchKey: ..."); S3ErrorCode() reads it back for the HTTP side. Codes:
// InvalidBucketName, NoSuchBucket, BucketAlreadyOwnedByYou, BucketNotEmpty,
// KeyTooLongError, NoSuchKey, NoSuchUpload, InvalidPart, InvalidPartOrder,
// EntityTooSmall, InvalidArgument; anything else (an IoError) is
// InternalError.
//
// Thread-safety: safe from any thread. Reads take no lock; a bucket's
// creation and deletion and an object's commit (its rename) are serialized so
// a bucket is never deleted under an object being committed into it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gust {

// S3's limits that the store enforces.
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr int kMaxPartNumber = 10000;
inline constexpr uint64_t kMinPartBytes = 5ull << 20;  // every part but the last

struct BucketInfo {
  std::string name;
  int64_t created_ms = 0;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // unquoted: MD5 hex, or md5-of-md5s "-N" for multipart
  int64_t modified_ms = 0;
  std::string content_type;
  std::map<std::string, std::string> metadata;  // x-amz-meta-<name> (lowercase) -> value
};

// What a new object carries besides its bytes.
struct ObjectAttributes {
  std::string content_type;
  std::map<std::string, std::string> metadata;
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;
  std::string after;  // exclusive: a key or common prefix already returned
  int max_keys = 1000;
};

struct ListResult {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string last;  // the last key or common prefix returned (the next page's `after`)
};

struct PartInfo {
  int number = 0;
  std::string etag;
  uint64_t size = 0;
  int64_t modified_ms = 0;
};

// An object opened for reading: its description and a descriptor whose bytes
// [data_offset, data_offset + info.size) are the object's. The file stays
// readable after the key is overwritten or deleted (POSIX semantics).
class ObjectReader {
 public:
  ObjectReader(ObjectInfo info, int fd, uint64_t data_offset);
  ~ObjectReader();
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;
  const ObjectInfo& info() const { return info_; }
  // Reads [offset, offset + length) of the object (bounds checked by the caller).
  Result<std::string> Read(uint64_t offset, uint64_t length) const;
  int fd() const { return fd_; }
  uint64_t data_offset() const { return data_offset_; }

 private:
  ObjectInfo info_;
  int fd_;
  uint64_t data_offset_;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual Status CreateBucket(const std::string& bucket) = 0;
  // BucketNotEmpty while it holds objects; its unfinished uploads go with it.
  virtual Status DeleteBucket(const std::string& bucket) = 0;
  virtual Result<std::vector<BucketInfo>> ListBuckets() = 0;
  virtual Status HeadBucket(const std::string& bucket) = 0;

  virtual Result<ObjectInfo> PutObject(const std::string& bucket, const std::string& key,
                                       std::string_view data, const ObjectAttributes& attrs) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> Open(const std::string& bucket,
                                                     const std::string& key) = 0;
  // Deleting a key that is not there succeeds (S3's answer).
  virtual Status DeleteObject(const std::string& bucket, const std::string& key) = 0;
  // Keys in byte order; with a delimiter, keys sharing prefix + "...delimiter"
  // are rolled into one common prefix. max_keys counts both kinds.
  virtual Result<ListResult> List(const std::string& bucket, const ListOptions& options) = 0;
  // attrs null: the source's are kept (x-amz-metadata-directive COPY).
  virtual Result<ObjectInfo> CopyObject(const std::string& src_bucket, const std::string& src_key,
                                        const std::string& bucket, const std::string& key,
                                        const ObjectAttributes* attrs) = 0;

  virtual Result<std::string> CreateUpload(const std::string& bucket, const std::string& key,
                                           const ObjectAttributes& attrs) = 0;
  // Returns the part's ETag (MD5 hex). A part number sent again replaces the part.
  virtual Result<std::string> PutPart(const std::string& bucket, const std::string& key,
                                      const std::string& upload_id, int number,
                                      std::string_view data) = 0;
  virtual Result<std::vector<PartInfo>> ListParts(const std::string& bucket, const std::string& key,
                                                  const std::string& upload_id) = 0;
  // parts: (number, etag) in ascending order, as the client lists them.
  virtual Result<ObjectInfo> CompleteUpload(
      const std::string& bucket, const std::string& key, const std::string& upload_id,
      const std::vector<std::pair<int, std::string>>& parts) = 0;
  virtual Status AbortUpload(const std::string& bucket, const std::string& key,
                             const std::string& upload_id) = 0;
};

// Objects as files under root (created if missing); see the top comment.
Result<std::unique_ptr<ObjectStore>> OpenFileObjectStore(const std::string& root);

// The S3 code a store error carries ("NoSuchKey"), "InternalError" for others.
std::string S3ErrorCode(const Status& status);
// The message after the code.
std::string S3ErrorMessage(const Status& status);
// Lowercase hex MD5 (S3's ETag of a single-part object).
std::string Md5Hex(std::string_view bytes);
bool ValidBucketName(std::string_view name);

}  // namespace gust

// FileObjectStore: the layout under root (docs/STORAGE.md):
//   buckets/<bucket>/.created                     its mtime is the bucket's creation time
//   buckets/<bucket>/objects/<aa>/<sha256(key)>   one object file per key
//   buckets/<bucket>/uploads/<id>/upload          a multipart upload's key and attributes
//   buckets/<bucket>/uploads/<id>/part-<n>        its parts
//   buckets/<bucket>/tmp/                         files being written (same filesystem)
//   tmp/, trash/                                  buckets being created / deleted
// An object (and a part, and an upload's record) is one file: the magic
// "GUSTOBJ1", a 4-byte little-endian header length, a JSON header (the key in
// base64, since a key may be any bytes; size, etag, times, content type,
// metadata), then the data. One file per object makes the commit a single
// rename: no moment where data and description disagree.
#include "store/object_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json_read.h"
#include "common/mutex.h"
#include "store/blob_store.h"
#include "store/file_util.h"

namespace gust {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kMagic[] = "GUSTOBJ1";
constexpr size_t kMagicBytes = 8;
constexpr size_t kPrefixBytes = kMagicBytes + 4;
// A header holds a key (1 KB), S3's 2 KB of user metadata and a few numbers;
// anything larger is not a file this store wrote.
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;

Status S3Error(const char* code, const std::string& message) {
  std::string text = std::string(code) + ": " + message;
  if (!std::strcmp(code, "NoSuchKey") || !std::strcmp(code, "NoSuchBucket") ||
      !std::strcmp(code, "NoSuchUpload")) {
    return Status::NotFound(std::move(text));
  }
  if (!std::strcmp(code, "BucketAlreadyOwnedByYou") || !std::strcmp(code, "BucketNotEmpty")) {
    return Status::Conflict(std::move(text));
  }
  return Status::InvalidArgument(std::move(text));
}

Status NoSuchBucket(const std::string& bucket) {
  return S3Error("NoSuchBucket", "The specified bucket does not exist: " + bucket);
}
Status NoSuchKey() { return S3Error("NoSuchKey", "The specified key does not exist."); }
Status NoSuchUpload(const std::string& id) {
  return S3Error(
      "NoSuchUpload",
      "The specified upload does not exist; it may have been aborted or completed: " + id);
}

std::string ToHex(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

// Closes on scope exit.
struct Fd {
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int Release() { return std::exchange(fd, -1); }
  int fd;
};

Status PreadAll(int fd, char* out, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t got = pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read object", errno);
    }
    if (got == 0) return Status::IoError("object file is shorter than its header says");
    out += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return Status::Ok();
}

std::string EncodePrefix(uint32_t header_len) {
  std::string out(kMagic, kMagicBytes);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((header_len >> (8 * i)) & 0xff));
  return out;
}

// Reads an object file's header; *data_offset is where its data starts.
Result<Json> ReadHeader(int fd, uint64_t* data_offset) {
  char prefix[kPrefixBytes];
  GUST_RETURN_IF_ERROR(PreadAll(fd, prefix, kPrefixBytes, 0));
  if (std::memcmp(prefix, kMagic, kMagicBytes) != 0) {
    return Status::IoError("not an object file (bad magic)");
  }
  uint32_t len = 0;
  for (int i = 0; i < 4; ++i) {
    len |= static_cast<uint32_t>(static_cast<unsigned char>(prefix[kMagicBytes + i])) << (8 * i);
  }
  if (len > kMaxHeaderBytes) return Status::IoError("object header too large");
  std::string text(len, '\0');
  GUST_RETURN_IF_ERROR(PreadAll(fd, text.data(), len, kPrefixBytes));
  Json header = Json::parse(text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return Status::IoError("object header is not a JSON object");
  }
  *data_offset = kPrefixBytes + len;
  return header;
}

Json AttributesJson(const ObjectAttributes& attrs) {
  Json meta = Json::object();
  for (const auto& [name, value] : attrs.metadata) meta[name] = value;
  return Json{{"content_type", attrs.content_type}, {"metadata", meta}};
}

ObjectAttributes AttributesFrom(const Json& header) {
  ObjectAttributes attrs;
  attrs.content_type = JsonStringOr(header, "content_type", "");
  if (const Json* meta = JsonFind(header, "metadata"); meta != nullptr && meta->is_object()) {
    for (const auto& [name, value] : meta->items()) {
      if (value.is_string()) attrs.metadata[name] = value.get<std::string>();
    }
  }
  return attrs;
}

// An object's description from its header (the key decoded from base64).
Result<ObjectInfo> InfoFrom(const Json& header) {
  ObjectInfo info;
  auto key = Base64Decode(JsonStringOr(header, "key", ""));
  if (!key.ok()) return Status::IoError("object header has a bad key");
  info.key = std::move(key).value();
  int64_t size = JsonIntOr(header, "size", -1);
  if (size < 0) return Status::IoError("object header has no size");
  info.size = static_cast<uint64_t>(size);
  info.etag = JsonStringOr(header, "etag", "");
  info.modified_ms = JsonIntOr(header, "modified_ms", 0);
  ObjectAttributes attrs = AttributesFrom(header);
  info.content_type = std::move(attrs.content_type);
  info.metadata = std::move(attrs.metadata);
  return info;
}

Json HeaderOf(const std::string& key, uint64_t size, const std::string& etag,
              const ObjectAttributes& attrs) {
  Json header = AttributesJson(attrs);
  header["key"] = Base64Encode(key);
  header["size"] = size;
  header["etag"] = etag;
  header["modified_ms"] = NowEpochMs();
  return header;
}

// A temp file being written, removed unless committed.
class TempFile {
 public:
  TempFile() = default;
  ~TempFile() {
    if (fd_ >= 0) close(fd_);
    if (!path_.empty()) unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  Status Create(const std::string& dir) {
    path_ = dir + "/" + RandomHex(12);
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      int err = errno;
      path_.clear();
      return Status::FromErrno("create temp file in " + dir, err);
    }
    return Status::Ok();
  }
  // Writes the prefix and header; then data follows.
  Status WriteHeader(const Json& header) {
    std::string text = JsonDump(header);
    GUST_RETURN_IF_ERROR(WriteAll(fd_, EncodePrefix(static_cast<uint32_t>(text.size())), path_));
    return WriteAll(fd_, text, path_);
  }
  Status Write(std::string_view data) { return WriteAll(fd_, data, path_); }
  // Appends length bytes of src from offset (in the kernel: no copy through memory).
  Status CopyFrom(int src, uint64_t offset, uint64_t length) {
    auto off = static_cast<loff_t>(offset);
    while (length > 0) {
      ssize_t n = copy_file_range(src, &off, fd_, nullptr, length, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("copy into " + path_, errno);
      }
      if (n == 0) return Status::IoError("source object is shorter than its header says");
      length -= static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }
  Status CopyFrom(const ObjectReader& src) {
    return CopyFrom(src.fd(), src.data_offset(), src.info().size);
  }
  // fsync, close, rename onto dest. ENOENT (the destination's directory is
  // gone, or this file's) is returned as is for the caller to name.
  Status Commit(const std::string& dest) {
    if (fsync(fd_) != 0) return Status::FromErrno("fsync " + path_, errno);
    int fd = std::exchange(fd_, -1);
    if (close(fd) != 0) return Status::FromErrno("close " + path_, errno);
    if (rename(path_.c_str(), dest.c_str()) != 0) return Status::FromErrno("rename", errno);
    path_.clear();
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_ = -1;
};

bool IsEnoent(const Status& s) {
  return s.message().find(std::strerror(ENOENT)) != std::string::npos;
}

bool ValidUploadId(const std::string& id) {
  if (id.size() != 32) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string StripQuotes(const std::string& etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    return etag.substr(1, etag.size() - 2);
  }
  return etag;
}

class FileObjectStore : public ObjectStore {
 public:
  explicit FileObjectStore(std::string root) : root_(std::move(root)) {}

  Status CreateBucket(const std::string& bucket) override {
    if (!ValidBucketName(bucket)) return InvalidBucketName(bucket);
    // Built aside and renamed in: a crash leaves a whole bucket or none.
    std::string tmp = root_ + "/tmp/" + RandomHex(12);
    GUST_RETURN_IF_ERROR(MakeDir(tmp, 0700));
    for (const char* sub : {"/objects", "/uploads", "/tmp"}) {
      GUST_RETURN_IF_ERROR(MakeDir(tmp + sub, 0700));
    }
    int fd = open((tmp + "/.created").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    MutexLock lock(&mu_);
    if (rename(tmp.c_str(), BucketDir(bucket).c_str()) != 0) {
      int err = errno;
      std::error_code ec;
      fs::remove_all(tmp, ec);
      if (err == EEXIST || err == ENOTEMPTY) {
        return S3Error("BucketAlreadyOwnedByYou",
                       "Your previous request to create the named bucket succeeded and you "
                       "already own it.");
      }
      return Status::FromErrno("create bucket " + bucket, err);
    }
    return FsyncDir(root_ + "/buckets");
  }

  Status DeleteBucket(const std::string& bucket) override {
    if (!ValidBucketName(bucket)) return NoSuchBucket(bucket);
    std::string trash = root_ + "/trash/" + RandomHex(12);
    {
      MutexLock lock(&mu_);
      GUST_RETURN_IF_ERROR(HeadBucket(bucket));
      std::error_code ec;
      for (const auto& shard : fs::directory_iterator(BucketDir(bucket) + "/objects", ec)) {
        std::error_code ec2;
        if (!fs::is_empty(shard.path(), ec2)) {
          return S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty.");
        }
      }
      if (ec) return Status::IoError("list bucket " + bucket + ": " + ec.message());
      if (rename(BucketDir(bucket).c_str(), trash.c_str()) != 0) {
        return Status::FromErrno("delete bucket " + bucket, errno);
      }
    }
    std::error_code ec;
    fs::remove_all(trash, ec);
    return FsyncDir(root_ + "/buckets");
  }

  Result<std::vector<BucketInfo>> ListBuckets() override {
    std::vector<BucketInfo> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root_ + "/buckets", ec)) {
      BucketInfo info;
      info.name = entry.path().filename().string();
      struct stat st;
      if (stat((entry.path().string() + "/.created").c_str(), &st) == 0) {
        info.created_ms =
            static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
      }
      out.push_back(std::move(info));
    }
    if (ec) return Status::IoError("list buckets: " + ec.message());
    std::sort(out.begin(), out.end(),
              [](const BucketInfo& a, const BucketInfo& b) { return a.name < b.name; });
    return out;
  }

  Status HeadBucket(const std::string& bucket) override {
    if (!ValidBucketName(bucket)) return NoSuchBucket(bucket);
    struct stat st;
    if (stat(BucketDir(bucket).c_str(), &st) != 0) return NoSuchBucket(bucket);
    return Status::Ok();
  }

  Result<ObjectInfo> PutObject(const std::string& bucket, const std::string& key,
                               std::string_view data, const ObjectAttributes& attrs) override {
    GUST_RETURN_IF_ERROR(CheckKey(bucket, key));
    Json header = HeaderOf(key, data.size(), Md5Hex(data), attrs);
    TempFile tmp;
    GUST_RETURN_IF_ERROR(CreateTemp(bucket, &tmp));
    GUST_RETURN_IF_ERROR(tmp.WriteHeader(header));
    GUST_RETURN_IF_ERROR(tmp.Write(data));
    GUST_RETURN_IF_ERROR(CommitObject(bucket, key, &tmp));
    return InfoFrom(header);
  }

  Result<std::unique_ptr<ObjectReader>> Open(const std::string& bucket,
                                             const std::string& key) override {
    GUST_RETURN_IF_ERROR(CheckKey(bucket, key));
    Fd fd(open(ObjectPath(bucket, key).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) {
      if (errno == ENOENT) return NoSuchKey();
      return Status::FromErrno("open object", errno);
    }
    uint64_t offset = 0;
    GUST_ASSIGN_OR_RETURN(Json header, ReadHeader(fd.fd, &offset));
    GUST_ASSIGN_OR_RETURN(ObjectInfo info, InfoFrom(header));
    return std::make_unique<ObjectReader>(std::move(info), fd.Release(), offset);
  }

  Status DeleteObject(const std::string& bucket, const std::string& key) override {
    GUST_RETURN_IF_ERROR(CheckKey(bucket, key));
    std::string path = ObjectPath(bucket, key);
    if (unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::FromErrno("delete object", errno);
    }
    return FsyncDir(path.substr(0, path.rfind('/')));
  }

  Result<ListResult> List(const std::string& bucket, const ListOptions& options) override {
    GUST_RETURN_IF_ERROR(HeadBucket(bucket));
    // Every object's header, sorted by key: O(objects) per page, which is
    // what a directory of files gives (docs/STORAGE.md "Limits").
    std::vector<ObjectInfo> all;
    std::error_code ec;
    for (const auto& file : fs::recursive_directory_iterator(BucketDir(bucket) + "/objects", ec)) {
      std::error_code ec2;
      if (!file.is_regular_file(ec2)) continue;
      Fd fd(open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.fd < 0) continue;  // deleted meanwhile
      uint64_t offset = 0;
      auto header = ReadHeader(fd.fd, &offset);
      if (!header.ok()) continue;
      auto info = InfoFrom(*header);
      if (!info.ok()) continue;
      if (info->key.compare(0, options.prefix.size(), options.prefix) != 0) continue;
      all.push_back(std::move(info).value());
    }
    if (ec) return Status::IoError("list bucket " + bucket + ": " + ec.message());
    std::sort(all.begin(), all.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    ListResult out;
    int count = 0;
    for (ObjectInfo& info : all) {
      if (!options.after.empty() && info.key <= options.after) continue;
      std::string common;
      if (!options.delimiter.empty()) {
        size_t at = info.key.find(options.delimiter, options.prefix.size());
        if (at != std::string::npos) common = info.key.substr(0, at + options.delimiter.size());
      }
      // A common prefix already returned (on this page or, as `after`, an earlier one).
      if (!common.empty() &&
          ((!options.after.empty() && common <= options.after) ||
           (!out.common_prefixes.empty() && out.common_prefixes.back() == common))) {
        continue;
      }
      if (count == options.max_keys) {
        out.truncated = true;
        break;
      }
      ++count;
      if (common.empty()) {
        out.last = info.key;
        out.objects.push_back(std::move(info));
      } else {
        out.last = common;
        out.common_prefixes.push_back(std::move(common));
      }
    }
    return out;
  }

  Result<ObjectInfo> CopyObject(const std::string& src_bucket, const std::string& src_key,
                                const std::string& bucket, const std::string& key,
                                const ObjectAttributes* attrs) override {
    GUST_ASSIGN_OR_RETURN(auto src, Open(src_bucket, src_key));
    GUST_RETURN_IF_ERROR(CheckKey(bucket, key));
    ObjectAttributes kept{src->info().content_type, src->info().metadata};
    Json header = HeaderOf(key, src->info().size, src->info().etag, attrs ? *attrs : kept);
    TempFile tmp;
    GUST_RETURN_IF_ERROR(CreateTemp(bucket, &tmp));
    GUST_RETURN_IF_ERROR(tmp.WriteHeader(header));
    GUST_RETURN_IF_ERROR(tmp.CopyFrom(*src));
    GUST_RETURN_IF_ERROR(CommitObject(bucket, key, &tmp));
    return InfoFrom(header);
  }

  Result<std::string> CreateUpload(const std::string& bucket, const std::string& key,
                                   const ObjectAttributes& attrs) override {
    GUST_RETURN_IF_ERROR(CheckKey(bucket, key));
    std::string id = RandomHex(16);
    std::string dir = UploadDir(bucket, id);
    if (mkdir(dir.c_str(), 0700) != 0) {
      if (errno == ENOENT) return NoSuchBucket(bucket);
      return Status::FromErrno("create upload", errno);
    }
    TempFile tmp;
    GUST_RETURN_IF_ERROR(CreateTemp(bucket, &tmp));
    GUST_RETURN_IF_ERROR(tmp.WriteHeader(HeaderOf(key, 0, "", attrs)));
    GUST_RETURN_IF_ERROR(tmp.Commit(dir + "/upload"));
    GUST_RETURN_IF_ERROR(FsyncDir(dir));
    return id;
  }

  Result<std::string> PutPart(const std::string& bucket, const std::string& key,
                              const std::string& upload_id, int number,
                              std::string_view data) override {
    GUST_RETURN_IF_ERROR(CheckUpload(bucket, key, upload_id).status());
    if (number < 1 || number > kMaxPartNumber) {
      return S3Error("InvalidArgument",
                     "Part number must be an integer between 1 and 10000, inclusive");
    }
    std::string etag = Md5Hex(data);
    TempFile tmp;
    GUST_RETURN_IF_ERROR(CreateTemp(bucket, &tmp));
    GUST_RETURN_IF_ERROR(tmp.WriteHeader(HeaderOf(key, data.size(), etag, {})));
    GUST_RETURN_IF_ERROR(tmp.Write(data));
    Status s = tmp.Commit(PartPath(bucket, upload_id, number));
    if (!s.ok()) return IsEnoent(s) ? NoSuchUpload(upload_id) : s;
    return etag;
  }

  Result<std::vector<PartInfo>> ListParts(const std::string& bucket, const std::string& key,
                                          const std::string& upload_id) override {
    GUST_RETURN_IF_ERROR(CheckUpload(bucket, key, upload_id).status());
    std::vector<PartInfo> parts;
    std::error_code ec;
    for (const auto& file : fs::directory_iterator(UploadDir(bucket, upload_id), ec)) {
      std::string name = file.path().filename().string();
      if (name.rfind("part-", 0) != 0) continue;
      Fd fd(open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.fd < 0) continue;
      uint64_t offset = 0;
      auto header = ReadHeader(fd.fd, &offset);
      if (!header.ok()) continue;
      auto info = InfoFrom(*header);
      if (!info.ok()) continue;
      PartInfo part;
      part.number = std::atoi(name.c_str() + 5);
      part.etag = info->etag;
      part.size = info->size;
      part.modified_ms = info->modified_ms;
      parts.push_back(part);
    }
    std::sort(parts.begin(), parts.end(),
              [](const PartInfo& a, const PartInfo& b) { return a.number < b.number; });
    return parts;
  }

  Result<ObjectInfo> CompleteUpload(
      const std::string& bucket, const std::string& key, const std::string& upload_id,
      const std::vector<std::pair<int, std::string>>& parts) override {
    GUST_ASSIGN_OR_RETURN(ObjectAttributes attrs, CheckUpload(bucket, key, upload_id));
    if (parts.empty()) {
      return S3Error("MalformedXML", "You must specify at least one part");
    }
    // Each listed part opened and checked before anything is written.
    std::vector<std::unique_ptr<ObjectReader>> readers;
    std::string md5s;
    uint64_t total = 0;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].first <= parts[i - 1].first) {
        return S3Error("InvalidPartOrder",
                       "The list of parts was not in ascending order. The parts list must be "
                       "specified in order of the part number.");
      }
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto& [number, etag] = parts[i];
      Fd fd(open(PartPath(bucket, upload_id, number).c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.fd < 0) return InvalidPart(number);
      uint64_t offset = 0;
      GUST_ASSIGN_OR_RETURN(Json header, ReadHeader(fd.fd, &offset));
      GUST_ASSIGN_OR_RETURN(ObjectInfo info, InfoFrom(header));
      if (info.etag != StripQuotes(etag)) return InvalidPart(number);
      if (i + 1 < parts.size() && info.size < kMinPartBytes) {
        return S3Error("EntityTooSmall",
                       "Your proposed upload is smaller than the minimum allowed object size: "
                       "part " +
                           std::to_string(number) + " has " + std::to_string(info.size) +
                           " bytes; every part but the last needs at least 5 MiB");
      }
      auto raw = HexDecode(info.etag);
      if (!raw.ok()) return Status::IoError("part " + std::to_string(number) + " has a bad etag");
      md5s += *raw;
      total += info.size;
      readers.push_back(std::make_unique<ObjectReader>(std::move(info), fd.Release(), offset));
    }
    std::string etag = Md5Hex(md5s) + "-" + std::to_string(parts.size());
    Json header = HeaderOf(key, total, etag, attrs);
    TempFile tmp;
    GUST_RETURN_IF_ERROR(CreateTemp(bucket, &tmp));
    GUST_RETURN_IF_ERROR(tmp.WriteHeader(header));
    for (const auto& reader : readers) GUST_RETURN_IF_ERROR(tmp.CopyFrom(*reader));
    GUST_RETURN_IF_ERROR(CommitObject(bucket, key, &tmp));
    RemoveUpload(bucket, upload_id);
    return InfoFrom(header);
  }

  Status AbortUpload(const std::string& bucket, const std::string& key,
                     const std::string& upload_id) override {
    GUST_RETURN_IF_ERROR(CheckUpload(bucket, key, upload_id).status());
    RemoveUpload(bucket, upload_id);
    return Status::Ok();
  }

  // Removes what a crash left half-made: temp files and half-deleted buckets.
  Status Recover() {
    for (const char* sub : {"/buckets", "/tmp", "/trash"}) {
      GUST_RETURN_IF_ERROR(MakeDir(root_ + sub, 0700));
    }
    std::error_code ec;
    for (const char* sub : {"/tmp", "/trash"}) {
      for (const auto& entry : fs::directory_iterator(root_ + sub, ec)) {
        std::error_code ec2;
        fs::remove_all(entry.path(), ec2);
      }
    }
    for (const auto& bucket : fs::directory_iterator(root_ + "/buckets", ec)) {
      std::error_code ec2;
      for (const auto& entry : fs::directory_iterator(bucket.path() / "tmp", ec2)) {
        std::error_code ec3;
        fs::remove(entry.path(), ec3);
      }
    }
    if (ec) return Status::IoError("open object store " + root_ + ": " + ec.message());
    return Status::Ok();
  }

 private:
  static Status InvalidBucketName(const std::string& bucket) {
    return S3Error("InvalidBucketName",
                   "The specified bucket is not valid: '" + bucket +
                       "' (3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a "
                       "letter or digit)");
  }
  static Status InvalidPart(int number) {
    return S3Error("InvalidPart",
                   "One or more of the specified parts could not be found, or its "
                   "entity tag did not match: part " +
                       std::to_string(number));
  }

  std::string BucketDir(const std::string& bucket) const { return root_ + "/buckets/" + bucket; }
  std::string ObjectPath(const std::string& bucket, const std::string& key) const {
    std::string digest = Sha256Hex(key);
    return BucketDir(bucket) + "/objects/" + digest.substr(0, 2) + "/" + digest;
  }
  std::string UploadDir(const std::string& bucket, const std::string& id) const {
    return BucketDir(bucket) + "/uploads/" + id;
  }
  std::string PartPath(const std::string& bucket, const std::string& id, int number) const {
    return UploadDir(bucket, id) + "/part-" + std::to_string(number);
  }

  Status CheckKey(const std::string& bucket, const std::string& key) {
    GUST_RETURN_IF_ERROR(HeadBucket(bucket));
    if (key.empty()) return S3Error("InvalidArgument", "An object key must not be empty");
    if (key.size() > kMaxKeyBytes) {
      return S3Error("KeyTooLongError", "Your key is too long: " + std::to_string(key.size()) +
                                            " bytes, at most 1024");
    }
    return Status::Ok();
  }

  Status CreateTemp(const std::string& bucket, TempFile* tmp) {
    Status s = tmp->Create(BucketDir(bucket) + "/tmp");
    if (!s.ok() && IsEnoent(s)) return NoSuchBucket(bucket);
    return s;
  }

  // The upload's attributes, once its id and key are checked.
  Result<ObjectAttributes> CheckUpload(const std::string& bucket, const std::string& key,
                                       const std::string& upload_id) {
    GUST_RETURN_IF_ERROR(CheckKey(bucket, key));
    if (!ValidUploadId(upload_id)) return NoSuchUpload(upload_id);
    Fd fd(open((UploadDir(bucket, upload_id) + "/upload").c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) return NoSuchUpload(upload_id);
    uint64_t offset = 0;
    GUST_ASSIGN_OR_RETURN(Json header, ReadHeader(fd.fd, &offset));
    GUST_ASSIGN_OR_RETURN(ObjectInfo info, InfoFrom(header));
    if (info.key != key) return NoSuchUpload(upload_id);
    return AttributesFrom(header);
  }

  void RemoveUpload(const std::string& bucket, const std::string& upload_id) {
    std::error_code ec;
    fs::remove_all(UploadDir(bucket, upload_id), ec);
  }

  // Renames tmp onto the key's file, under the lock DeleteBucket takes.
  Status CommitObject(const std::string& bucket, const std::string& key, TempFile* tmp) {
    std::string path = ObjectPath(bucket, key);
    std::string dir = path.substr(0, path.rfind('/'));
    MutexLock lock(&mu_);
    GUST_RETURN_IF_ERROR(HeadBucket(bucket));
    GUST_RETURN_IF_ERROR(MakeDir(dir, 0700));
    GUST_RETURN_IF_ERROR(tmp->Commit(path));
    return FsyncDir(dir);
  }

  const std::string root_;
  // Serializes a bucket's creation and deletion with objects' commits.
  Mutex mu_;
};

}  // namespace

ObjectReader::ObjectReader(ObjectInfo info, int fd, uint64_t data_offset)
    : info_(std::move(info)), fd_(fd), data_offset_(data_offset) {}

ObjectReader::~ObjectReader() {
  if (fd_ >= 0) close(fd_);
}

Result<std::string> ObjectReader::Read(uint64_t offset, uint64_t length) const {
  std::string out(length, '\0');
  GUST_RETURN_IF_ERROR(PreadAll(fd_, out.data(), length, data_offset_ + offset));
  return out;
}

Result<std::unique_ptr<ObjectStore>> OpenFileObjectStore(const std::string& root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IoError("create object store root " + root + ": " + ec.message());
  auto store = std::make_unique<FileObjectStore>(root);
  GUST_RETURN_IF_ERROR(store->Recover());
  return std::unique_ptr<ObjectStore>(std::move(store));
}

std::string S3ErrorCode(const Status& status) {
  const std::string& m = status.message();
  size_t colon = m.find(':');
  if (status.code() != Code::kIoError && status.code() != Code::kInternal &&
      colon != std::string::npos && colon > 0 &&
      std::all_of(m.begin(), m.begin() + static_cast<long>(colon),
                  [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
    return m.substr(0, colon);
  }
  return "InternalError";
}

std::string S3ErrorMessage(const Status& status) {
  const std::string& m = status.message();
  if (S3ErrorCode(status) == "InternalError") return m;
  size_t colon = m.find(':');
  return m.substr(std::min(m.size(), colon + 2));
}

std::string Md5Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure, which is fatal (docs/STYLE.md).
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_md5(), nullptr) != 1) abort();
  return ToHex(md, len);
}

bool ValidBucketName(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '-'; });
}

}  // namespace gust

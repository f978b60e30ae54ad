// FileBlobStore: each blob is the file root/<first two hex digits>/<digest>.
// Writes go to a temp file in the destination directory, which is fsynced and
// renamed into place, and the directory is fsynced so the rename survives a
// crash. Blob files are read-only (0444) once in place.
#include "store/blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "common/ids.h"
#include "store/file_util.h"

namespace gust {

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure, which we treat as fatal.
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) abort();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

namespace {

bool IsDigest(const std::string& digest) {
  if (digest.size() != 64) return false;
  for (char c : digest) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status InvalidDigest(const std::string& digest) {
  return Status::InvalidArgument("not a sha256 hex digest: '" + digest + "'");
}

class FileBlobStore : public BlobStore {
 public:
  explicit FileBlobStore(std::string root) : root_(std::move(root)) {}

  Result<std::string> Put(std::string_view bytes) override {
    std::string digest = Sha256Hex(bytes);
    std::string path = PathFor(digest);
    if (access(path.c_str(), F_OK) == 0) return digest;
    std::string dir = root_ + "/" + digest.substr(0, 2);
    GUST_RETURN_IF_ERROR(MakeDir(dir));
    std::string tmp = dir + "/.tmp-" + RandomHex(8);
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) return Status::FromErrno("create " + tmp, errno);
    Status s = WriteAll(fd, bytes, tmp);
    if (s.ok() && fsync(fd) != 0) s = Status::FromErrno("fsync " + tmp, errno);
    if (close(fd) != 0 && s.ok()) s = Status::FromErrno("close " + tmp, errno);
    // rename() replaces atomically, so a concurrent Put of the same bytes is harmless.
    if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
      s = Status::FromErrno("rename " + tmp, errno);
    }
    if (!s.ok()) {
      unlink(tmp.c_str());
      return s;
    }
    GUST_RETURN_IF_ERROR(FsyncDir(dir));
    return digest;
  }

  Result<std::string> Get(const std::string& digest) override {
    GUST_ASSIGN_OR_RETURN(std::string path, PathOf(digest));
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    std::string out;
    struct stat st;
    if (fstat(fd, &st) == 0) out.reserve(static_cast<size_t>(st.st_size));
    char buf[1 << 16];
    while (true) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        close(fd);
        return Status::FromErrno("read " + path, err);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
  }

  bool Contains(const std::string& digest) override {
    return IsDigest(digest) && access(PathFor(digest).c_str(), F_OK) == 0;
  }

  Result<std::string> PathOf(const std::string& digest) override {
    if (!IsDigest(digest)) return InvalidDigest(digest);
    std::string path = PathFor(digest);
    if (access(path.c_str(), F_OK) != 0) return Status::NotFound("blob not found: " + digest);
    return path;
  }

  Status Remove(const std::string& digest) override {
    if (!IsDigest(digest)) return InvalidDigest(digest);
    std::string path = PathFor(digest);
    if (unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return Status::NotFound("blob not found: " + digest);
      return Status::FromErrno("unlink " + path, errno);
    }
    return Status::Ok();
  }

 private:
  std::string PathFor(const std::string& digest) const {
    return root_ + "/" + digest.substr(0, 2) + "/" + digest;
  }

  const std::string root_;
};

}  // namespace

Result<std::unique_ptr<BlobStore>> OpenFileBlobStore(const std::string& root) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return Status::IoError("create blob store root " + root + ": " + ec.message());
  if (!std::filesystem::is_directory(root, ec)) {
    return Status::IoError("blob store root is not a directory: " + root);
  }
  return std::unique_ptr<BlobStore>(std::make_unique<FileBlobStore>(root));
}

}  // namespace gust

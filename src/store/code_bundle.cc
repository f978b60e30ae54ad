// Zip handling with libzip. The whole archive is checked from its central
// directory before anything is written (ScanZip); extraction then re-checks
// what actually comes out of each entry, because declared sizes can lie.
#include "store/code_bundle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "common/ids.h"
#include "store/blob_store.h"

namespace gust {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxEntries = 100000;
constexpr uint64_t kMaxSymlinkTarget = 4096;
constexpr const char* kNotAZip =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

struct ZipDiscard {
  void operator()(zip_t* za) const { zip_discard(za); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;

struct ZipFileClose {
  void operator()(zip_file_t* zf) const { zip_fclose(zf); }
};
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileClose>;

enum class Kind { kFile, kDir, kSymlink };

struct Entry {
  zip_uint64_t index = 0;
  std::string name;  // normalised: no leading "./", no "//", no trailing "/"
  Kind kind = Kind::kFile;
  uint64_t size = 0;  // declared uncompressed size
  bool executable = false;
  std::string target;  // symlinks only
};

Result<ZipPtr> OpenZip(std::string_view bytes) {
  // libzip treats empty input as a new, empty archive; an upload it is not.
  constexpr size_t kEndOfCentralDirectorySize = 22;
  if (bytes.size() < kEndOfCentralDirectorySize) return Status::InvalidArgument(kNotAZip);
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (src == nullptr) {
    std::string msg = zip_error_strerror(&error);
    zip_error_fini(&error);
    return Status::Internal("zip_source_buffer_create: " + msg);
  }
  zip_t* za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  zip_error_fini(&error);
  if (za == nullptr) {
    zip_source_free(src);
    return Status::InvalidArgument(kNotAZip);
  }
  return ZipPtr(za);
}

Status EntryError(const std::string& name, const std::string& problem) {
  return Status::InvalidArgument("zip entry '" + name + "' " + problem);
}

// Splits a zip path into components, dropping empty ones and ".". Fails on
// absolute paths and on "..", which could lead out of the bundle.
Result<std::vector<std::string>> SplitEntryName(const std::string& name) {
  if (name.empty()) return EntryError(name, "has an empty name");
  if (name[0] == '/') return EntryError(name, "has an absolute path");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string part = name.substr(start, end - start);
    if (part == "..") return EntryError(name, "escapes the bundle");
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = end + 1;
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out;
}

Result<std::string> ReadSymlinkTarget(zip_t* za, const Entry& e) {
  if (e.size == 0 || e.size > kMaxSymlinkTarget) {
    return EntryError(e.name, "is a symlink with an invalid target length");
  }
  ZipFilePtr zf(zip_fopen_index(za, e.index, 0));
  if (zf == nullptr) return EntryError(e.name, std::string("is corrupt: ") + zip_strerror(za));
  std::string target(e.size + 1, '\0');
  zip_int64_t n = zip_fread(zf.get(), target.data(), target.size());
  if (n < 0 || static_cast<uint64_t>(n) != e.size) {
    return EntryError(e.name, "is a corrupt symlink");
  }
  target.resize(static_cast<size_t>(n));
  if (target.find('\0') != std::string::npos) return EntryError(e.name, "is a corrupt symlink");
  return target;
}

// A symlink may only point inside the bundle. Resolution is lexical, and a
// ".." right after a component that is itself a symlink is refused, because
// the kernel would follow that symlink first and ".." would then mean
// something else than it does lexically.
Status CheckSymlink(const Entry& e, const std::set<std::string>& symlinks) {
  if (e.target[0] == '/') {
    return EntryError(e.name, "is a symlink to an absolute path: '" + e.target + "'");
  }
  GUST_ASSIGN_OR_RETURN(std::vector<std::string> stack, SplitEntryName(e.name));
  stack.pop_back();  // resolve relative to the link's directory
  size_t start = 0;
  const std::string& t = e.target;
  while (start <= t.size()) {
    size_t end = t.find('/', start);
    if (end == std::string::npos) end = t.size();
    std::string part = t.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") continue;
    if (part != "..") {
      stack.push_back(std::move(part));
      continue;
    }
    if (stack.empty() || symlinks.count(Join(stack, stack.size())) > 0) {
      return EntryError(e.name, "is a symlink pointing outside the bundle: '" + t + "'");
    }
    stack.pop_back();
  }
  return Status::Ok();
}

// Reads and checks the central directory. Nothing is extracted.
Result<std::vector<Entry>> ScanZip(zip_t* za, uint64_t max_unzipped) {
  zip_int64_t count = zip_get_num_entries(za, 0);
  if (count < 0) return Status::InvalidArgument(kNotAZip);
  if (static_cast<uint64_t>(count) > kMaxEntries) {
    return Status::InvalidArgument("zip has " + std::to_string(count) +
                                   " entries, more than the limit of " +
                                   std::to_string(kMaxEntries));
  }
  const Status too_big = Status::InvalidArgument("Unzipped size must be smaller than " +
                                                 std::to_string(max_unzipped) + " bytes");
  std::vector<Entry> entries;
  std::map<std::string, Kind> kinds;
  uint64_t total = 0;
  for (zip_uint64_t i = 0; i < static_cast<zip_uint64_t>(count); ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, i, 0, &st) != 0 || (st.valid & ZIP_STAT_NAME) == 0 ||
        (st.valid & ZIP_STAT_SIZE) == 0) {
      return Status::InvalidArgument(kNotAZip);
    }
    std::string raw_name = st.name;
    GUST_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitEntryName(raw_name));
    Entry e;
    e.index = i;
    e.name = Join(parts, parts.size());
    e.size = st.size;
    e.kind = raw_name.back() == '/' ? Kind::kDir : Kind::kFile;
    zip_uint8_t opsys = 0;
    zip_uint32_t attributes = 0;
    if (zip_file_get_external_attributes(za, i, 0, &opsys, &attributes) == 0 &&
        opsys == ZIP_OPSYS_UNIX) {
      mode_t mode = static_cast<mode_t>(attributes >> 16);
      switch (mode & S_IFMT) {
        case 0:
        case S_IFREG:
          break;
        case S_IFDIR:
          e.kind = Kind::kDir;
          break;
        case S_IFLNK:
          e.kind = Kind::kSymlink;
          break;
        default:
          return EntryError(raw_name, "is not a regular file, directory or symlink");
      }
      e.executable = (mode & 0111) != 0;
    }
    if (e.name.empty()) {
      if (e.kind == Kind::kDir) continue;  // "./": the bundle root itself
      return EntryError(raw_name, "has an empty name");
    }
    if (e.kind == Kind::kSymlink) {
      GUST_ASSIGN_OR_RETURN(e.target, ReadSymlinkTarget(za, e));
    }
    if (e.kind != Kind::kDir) {
      if (e.size > max_unzipped - total) return too_big;
      total += e.size;
    }
    if (!kinds.emplace(e.name, e.kind).second) return EntryError(raw_name, "appears twice");
    entries.push_back(std::move(e));
  }
  std::set<std::string> symlinks;
  for (const auto& [name, kind] : kinds) {
    if (kind == Kind::kSymlink) symlinks.insert(name);
  }
  for (const Entry& e : entries) {
    // Every ancestor must be a directory (or implied by the paths): writing
    // through a symlink or "into" a file is refused.
    GUST_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitEntryName(e.name));
    for (size_t n = 1; n < parts.size(); ++n) {
      auto it = kinds.find(Join(parts, n));
      if (it != kinds.end() && it->second != Kind::kDir) {
        return EntryError(e.name, "is inside '" + it->first + "', which is not a directory");
      }
    }
    if (e.kind == Kind::kSymlink) GUST_RETURN_IF_ERROR(CheckSymlink(e, symlinks));
  }
  return entries;
}

// mkdir -p below an existing root; parts are already validated.
Status MakeDirs(const std::string& root, const std::string& rel) {
  std::string path = root;
  size_t start = 0;
  while (start < rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    path += '/';
    path.append(rel, start, end - start);
    start = end + 1;
    if (mkdir(path.c_str(), 0755) == 0) {
      if (chmod(path.c_str(), 0755) != 0) return Status::FromErrno("chmod " + path, errno);
      continue;
    }
    if (errno != EEXIST) return Status::FromErrno("mkdir " + path, errno);
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::IoError("extract: " + path + " exists and is not a directory");
    }
  }
  return Status::Ok();
}

Status ExtractFile(zip_t* za, const Entry& e, const std::string& path) {
  ZipFilePtr zf(zip_fopen_index(za, e.index, 0));
  if (zf == nullptr) return EntryError(e.name, std::string("is corrupt: ") + zip_strerror(za));
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create " + path, errno);
  Status s;
  uint64_t written = 0;
  std::vector<char> buf(1 << 16);
  while (s.ok()) {
    zip_int64_t n = zip_fread(zf.get(), buf.data(), buf.size());
    if (n < 0) {
      s = EntryError(e.name, std::string("is corrupt: ") + zip_file_strerror(zf.get()));
      break;
    }
    if (n == 0) break;
    written += static_cast<uint64_t>(n);
    if (written > e.size) {
      s = EntryError(e.name,
                     "holds more bytes than its declared size of " + std::to_string(e.size));
      break;
    }
    const char* p = buf.data();
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      ssize_t w = write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        s = Status::FromErrno("write " + path, errno);
        break;
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  if (s.ok() && written != e.size) {
    s = EntryError(e.name, "holds fewer bytes than its declared size of " + std::to_string(e.size));
  }
  if (s.ok() && fchmod(fd, e.executable ? 0755 : 0644) != 0) {
    s = Status::FromErrno("chmod " + path, errno);
  }
  close(fd);
  return s;
}

Status ExtractEntries(zip_t* za, const std::vector<Entry>& entries, const std::string& dest) {
  // Symlinks last, so no file can be written through one.
  for (const Entry& e : entries) {
    if (e.kind == Kind::kDir) {
      GUST_RETURN_IF_ERROR(MakeDirs(dest, e.name));
    } else if (e.kind == Kind::kFile) {
      size_t slash = e.name.rfind('/');
      if (slash != std::string::npos) GUST_RETURN_IF_ERROR(MakeDirs(dest, e.name.substr(0, slash)));
      GUST_RETURN_IF_ERROR(ExtractFile(za, e, dest + "/" + e.name));
    }
  }
  for (const Entry& e : entries) {
    if (e.kind != Kind::kSymlink) continue;
    size_t slash = e.name.rfind('/');
    if (slash != std::string::npos) GUST_RETURN_IF_ERROR(MakeDirs(dest, e.name.substr(0, slash)));
    std::string path = dest + "/" + e.name;
    if (symlink(e.target.c_str(), path.c_str()) != 0) {
      return Status::FromErrno("symlink " + path, errno);
    }
  }
  // One syncfs instead of an fsync per file: a bundle that a crash left
  // half-written must not be mistaken for a complete one after BundleCache's rename.
  int fd = open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + dest, errno);
  int rc = syncfs(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return Status::FromErrno("syncfs " + dest, err);
  return Status::Ok();
}

}  // namespace

Result<ZipInfo> ValidateZip(std::string_view zip_bytes, uint64_t max_unzipped) {
  GUST_ASSIGN_OR_RETURN(ZipPtr za, OpenZip(zip_bytes));
  GUST_ASSIGN_OR_RETURN(std::vector<Entry> entries, ScanZip(za.get(), max_unzipped));
  ZipInfo info;
  info.entries = static_cast<int>(entries.size());
  for (const Entry& e : entries) {
    if (e.kind != Kind::kDir) info.unzipped_bytes += e.size;
  }
  return info;
}

Status ExtractZip(std::string_view zip_bytes, const std::string& dest_dir) {
  GUST_ASSIGN_OR_RETURN(ZipPtr za, OpenZip(zip_bytes));
  GUST_ASSIGN_OR_RETURN(std::vector<Entry> entries, ScanZip(za.get(), kMaxUnzippedBytes));
  if (mkdir(dest_dir.c_str(), 0755) != 0) return Status::FromErrno("mkdir " + dest_dir, errno);
  Status s;
  if (chmod(dest_dir.c_str(), 0755) != 0) s = Status::FromErrno("chmod " + dest_dir, errno);
  if (s.ok()) s = ExtractEntries(za.get(), entries, dest_dir);
  if (!s.ok()) {
    std::error_code ec;
    fs::remove_all(dest_dir, ec);
  }
  return s;
}

BundleCache::BundleCache(std::string root) : root_(std::move(root)) {}

bool BundleCache::Contains(const std::string& digest) const {
  std::error_code ec;
  return !digest.empty() && digest.find('/') == std::string::npos && digest[0] != '.' &&
         fs::is_directory(DirOf(digest), ec);
}

Result<std::string> BundleCache::Ensure(const std::string& digest, std::string_view zip_bytes) {
  if (digest.empty() || digest.find('/') != std::string::npos || digest[0] == '.') {
    return Status::InvalidArgument("not a bundle digest: '" + digest + "'");
  }
  std::string dir = DirOf(digest);
  if (Contains(digest)) return dir;
  if (Sha256Hex(zip_bytes) != digest) {
    return Status::InvalidArgument("code zip does not match its digest " + digest);
  }
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return Status::IoError("create bundle cache " + root_ + ": " + ec.message());
  std::string tmp = root_ + "/.tmp-" + RandomHex(8);
  GUST_RETURN_IF_ERROR(ExtractZip(zip_bytes, tmp));
  if (rename(tmp.c_str(), dir.c_str()) != 0) {
    int err = errno;
    fs::remove_all(tmp, ec);
    // Another thread or process extracted the same bundle first: use theirs.
    if ((err == EEXIST || err == ENOTEMPTY) && Contains(digest)) return dir;
    return Status::FromErrno("rename " + tmp + " to " + dir, err);
  }
  return dir;
}

Status BundleCache::Remove(const std::string& digest) {
  if (!Contains(digest)) return Status::NotFound("bundle not cached: " + digest);
  // Rename first so nobody finds a half-deleted bundle under its digest.
  std::string doomed = root_ + "/.tmp-rm-" + RandomHex(8);
  if (rename(DirOf(digest).c_str(), doomed.c_str()) != 0) {
    return Status::FromErrno("rename " + DirOf(digest), errno);
  }
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec) return Status::IoError("remove " + doomed + ": " + ec.message());
  return Status::Ok();
}

}  // namespace gust

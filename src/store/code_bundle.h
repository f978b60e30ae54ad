// Code bundles: validation and extraction of a function's code zip, and the
// cache of extracted bundles that sandboxes mount read-only at /var/task.
//
// Every check Lambda makes on a zip is made here, with Lambda's wording where
// it has one. A zip is rejected whole before anything is written: no absolute
// or ".." paths, no symlinks pointing outside the bundle, at most
// kMaxUnzippedBytes in total.
//
// Thread-safety: free functions are reentrant; BundleCache is safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gust {

inline constexpr uint64_t kMaxUnzippedBytes = 262144000;    // Lambda's 250 MB
inline constexpr uint64_t kMaxZipBytes = 70 * 1024 * 1024;  // a direct upload (Lambda: 50 MB)

struct ZipInfo {
  uint64_t unzipped_bytes = 0;
  int entries = 0;
};

// InvalidArgument with a message naming the problem, e.g.
//  "Could not unzip uploaded file. Please check your file, then try to upload again."
//  "zip entry '../evil.py' escapes the bundle"
//  "Unzipped size must be smaller than 262144000 bytes"
Result<ZipInfo> ValidateZip(std::string_view zip_bytes, uint64_t max_unzipped = kMaxUnzippedBytes);

// Extracts a validated zip into dest_dir (created; must not exist). Files are
// made world-readable and directories world-searchable so the unprivileged
// sandbox user can read them; nothing is writable by it.
Status ExtractZip(std::string_view zip_bytes, const std::string& dest_dir);

// One entry of a zip built by ZipEntries.
struct ZipEntry {
  enum class Kind { kFile, kDir, kSymlink };
  std::string name;  // '/'-separated path inside the zip
  std::string path;  // on disk (files)
  Kind kind = Kind::kFile;
  bool executable = false;
  std::string link_target;  // symlinks
};

// Zips the entries, deterministically: sorted by name, fixed timestamps,
// only the exec bit of modes kept. InvalidArgument if there is no file.
Result<std::string> ZipEntries(std::vector<ZipEntry> entries);

// Zips a directory tree (for `gust deploy NAME DIR`). Skips __pycache__,
// .git and *.pyc. Paths inside are relative to dir. Deterministic: entries
// sorted, fixed timestamps, only the exec bit of modes kept, so the same tree
// gives the same bytes (and code_sha256). Symlinks are stored as symlinks.
Result<std::string> ZipDirectory(const std::string& dir);

// Extracted bundles under root/<sha256>/, created on first use.
class BundleCache {
 public:
  explicit BundleCache(std::string root);
  const std::string& root() const { return root_; }
  // Returns the directory of the extracted bundle for digest, extracting
  // zip_bytes there first if it is not cached (atomically: temp dir + rename).
  // InvalidArgument if zip_bytes does not hash to digest.
  Result<std::string> Ensure(const std::string& digest, std::string_view zip_bytes);
  bool Contains(const std::string& digest) const;
  std::string DirOf(const std::string& digest) const { return root_ + "/" + digest; }
  Status Remove(const std::string& digest);

 private:
  std::string root_;
};

}  // namespace gust

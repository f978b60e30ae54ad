// Fuzz target: a function's code zip (src/store/code_bundle.h), as the Lambda
// API and PUT /v1/blobs take it from a client: ValidateZip, then, for a zip
// it accepts, ExtractZip into a fresh directory (as BundleCache does) and
// ZipDirectory of what was extracted (as `gust deploy` zips a tree).
// Invariants: nothing lands outside the bundle's directory (no symlink there
// points out of it); the re-zipped tree is accepted again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "store/code_bundle.h"

namespace fs = std::filesystem;

namespace {

// A private scratch directory per fuzzing process.
const fs::path& Scratch() {
  static const fs::path dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "gust-fuzz-bundle-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    return fs::path(tmpl);
  }();
  return dir;
}

bool Inside(const fs::path& root, const fs::path& p) {
  auto rel = p.lexically_normal().lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view zip(reinterpret_cast<const char*>(data), size);
  auto info = gust::ValidateZip(zip, 64 << 20);
  if (!info.ok()) return 0;

  const fs::path dest = Scratch() / "bundle";
  std::error_code ec;
  fs::remove_all(dest, ec);
  // Extraction may still fail (ValidateZip reads the central directory, not
  // every entry's data: a CRC error shows only here), but with an error, and
  // whatever was written stays inside dest.
  (void)gust::ExtractZip(zip, dest.string());
  for (auto it = fs::recursive_directory_iterator(dest, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_symlink()) continue;
    fs::path target = fs::read_symlink(it->path(), ec);
    if (ec) std::abort();
    fs::path resolved = target.is_absolute() ? target : it->path().parent_path() / target;
    if (!Inside(dest, resolved)) std::abort();  // a link out of the bundle
  }
  auto rezipped = gust::ZipDirectory(dest.string());
  if (rezipped.ok() && !gust::ValidateZip(*rezipped, 64 << 20).ok()) std::abort();
  fs::remove_all(dest, ec);
  return 0;
}

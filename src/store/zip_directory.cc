// ZipDirectory (declared in code_bundle.h): a deterministic zip of a tree, so
// deploying the same directory twice yields the same code_sha256 and
// PublishVersion can tell that nothing changed. Entries are sorted, every
// timestamp is 1980-01-01 00:00 (the DOS epoch, set as DOS fields so the local
// time zone does not leak in) and only the exec bit of each file's mode is kept.
#include <sys/stat.h>
#include <zip.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <vector>

#include "store/code_bundle.h"

namespace gust {
namespace {

namespace fs = std::filesystem;

constexpr zip_uint16_t kDosTime = 0;
constexpr zip_uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01

bool Skipped(const fs::path& p, bool is_dir) {
  std::string name = p.filename().string();
  if (name == "__pycache__" || name == ".git") return true;
  return !is_dir && p.extension() == ".pyc";
}

using Item = ZipEntry;

Result<std::vector<Item>> Walk(const std::string& dir) {
  std::vector<Item> items;
  std::error_code ec;
  const fs::path root(dir);
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return Status::IoError("zip " + dir + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IoError("zip " + dir + ": " + ec.message());
    const fs::directory_entry& de = *it;
    fs::file_status st = de.symlink_status(ec);
    if (ec) return Status::IoError("stat " + de.path().string() + ": " + ec.message());
    bool is_dir = fs::is_directory(st);
    if (Skipped(de.path(), is_dir)) {
      if (is_dir) it.disable_recursion_pending();
      continue;
    }
    Item item;
    item.path = de.path().string();
    // Lexical: fs::relative would resolve symlinks and name the link by its target.
    item.name = de.path().lexically_relative(root).generic_string();
    if (is_dir) {
      item.kind = Item::Kind::kDir;
    } else if (fs::is_symlink(st)) {
      item.kind = Item::Kind::kSymlink;
      item.link_target = fs::read_symlink(de.path(), ec).string();
      if (ec) return Status::IoError("readlink " + item.path + ": " + ec.message());
    } else if (fs::is_regular_file(st)) {
      item.executable = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
    } else {
      continue;  // sockets, fifos, devices have no place in a bundle
    }
    items.push_back(std::move(item));
  }
  return items;
}

// Reads the whole of an in-memory zip source.
Result<std::string> ReadSource(zip_source_t* src) {
  if (zip_source_open(src) != 0) {
    return Status::Internal(std::string("zip: ") + zip_error_strerror(zip_source_error(src)));
  }
  std::string out;
  char buf[1 << 16];
  while (true) {
    zip_int64_t n = zip_source_read(src, buf, sizeof(buf));
    if (n < 0) {
      zip_source_close(src);
      return Status::Internal(std::string("zip: ") + zip_error_strerror(zip_source_error(src)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  zip_source_close(src);
  return out;
}

Status AddItem(zip_t* za, const Item& item, std::deque<std::string>& keep_alive) {
  zip_int64_t index = -1;
  mode_t mode = 0;
  if (item.kind == Item::Kind::kDir) {
    index = zip_dir_add(za, item.name.c_str(), ZIP_FL_ENC_UTF_8);
    mode = S_IFDIR | 0755;
  } else {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* src = nullptr;
    if (item.kind == Item::Kind::kSymlink) {
      const std::string& target = keep_alive.emplace_back(item.link_target);
      src = zip_source_buffer_create(target.data(), target.size(), 0, &error);
      mode = S_IFLNK | 0777;
    } else {
      src = zip_source_file_create(item.path.c_str(), 0, -1, &error);
      mode = S_IFREG | (item.executable ? 0755 : 0644);
    }
    std::string msg = zip_error_strerror(&error);
    zip_error_fini(&error);
    if (src == nullptr) return Status::IoError("zip " + item.path + ": " + msg);
    index = zip_file_add(za, item.name.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (index < 0) zip_source_free(src);
  }
  if (index < 0 ||
      zip_file_set_dostime(za, static_cast<zip_uint64_t>(index), kDosTime, kDosDate, 0) != 0 ||
      zip_file_set_external_attributes(za, static_cast<zip_uint64_t>(index), 0, ZIP_OPSYS_UNIX,
                                       static_cast<zip_uint32_t>(mode) << 16) != 0) {
    return Status::Internal("zip " + item.path + ": " + zip_strerror(za));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ZipDirectory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::InvalidArgument("not a directory: " + dir);
  GUST_ASSIGN_OR_RETURN(std::vector<Item> items, Walk(dir));
  auto zip = ZipEntries(std::move(items));
  if (!zip.ok() && zip.status().code() == Code::kInvalidArgument) {
    return Status::InvalidArgument("no files to zip in " + dir);
  }
  return zip;
}

Result<std::string> ZipEntries(std::vector<ZipEntry> items) {
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.name < b.name; });
  if (std::none_of(items.begin(), items.end(),
                   [](const Item& i) { return i.kind != Item::Kind::kDir; })) {
    return Status::InvalidArgument("no files to zip");
  }

  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* out = zip_source_buffer_create(nullptr, 0, 0, &error);
  zip_t* za = out != nullptr ? zip_open_from_source(out, ZIP_TRUNCATE, &error) : nullptr;
  std::string msg = zip_error_strerror(&error);
  zip_error_fini(&error);
  if (za == nullptr) {
    if (out != nullptr) zip_source_free(out);
    return Status::Internal("zip: " + msg);
  }
  zip_source_keep(out);  // survive zip_close so the bytes can be read back

  std::deque<std::string> keep_alive;  // symlink targets, read at zip_close
  Status s;
  for (const Item& item : items) {
    s = AddItem(za, item, keep_alive);
    if (!s.ok()) break;
  }
  if (s.ok() && zip_close(za) != 0) {
    s = Status::IoError(std::string("zip: ") + zip_strerror(za));
  }
  if (!s.ok()) {
    zip_discard(za);
    zip_source_free(out);
    return s;
  }
  Result<std::string> bytes = ReadSource(out);
  zip_source_free(out);
  return bytes;
}

}  // namespace gust

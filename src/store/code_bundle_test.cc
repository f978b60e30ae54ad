#include "store/code_bundle.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store/blob_store.h"
#include "store/test_util.h"

namespace gust {
namespace {

namespace fs = std::filesystem;
using store_testing::TempDir;

constexpr const char* kNotAZip =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

struct ZEntry {
  std::string name;
  std::string data;
  uint32_t mode = S_IFREG | 0644;  // 0: leave libzip's default attributes
  int compression = ZIP_CM_DEFLATE;
};

ZEntry Dir(std::string name) { return {std::move(name), "", S_IFDIR | 0755}; }
ZEntry Link(std::string name, std::string target) {
  return {std::move(name), std::move(target), S_IFLNK | 0777};
}

// Builds a zip in memory with libzip, exactly as given (no name checks).
std::string BuildZip(const std::vector<ZEntry>& entries) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* out = zip_source_buffer_create(nullptr, 0, 0, &error);
  zip_source_keep(out);
  zip_t* za = zip_open_from_source(out, ZIP_TRUNCATE, &error);
  EXPECT_NE(za, nullptr);
  for (const ZEntry& e : entries) {
    zip_int64_t index;
    if ((e.mode & S_IFMT) == S_IFDIR) {
      index = zip_dir_add(za, e.name.c_str(), 0);
    } else {
      zip_source_t* src = zip_source_buffer_create(e.data.data(), e.data.size(), 0, &error);
      index = zip_file_add(za, e.name.c_str(), src, 0);
      EXPECT_GE(index, 0) << e.name << ": " << zip_strerror(za);
      zip_set_file_compression(za, static_cast<zip_uint64_t>(index), e.compression, 0);
    }
    EXPECT_GE(index, 0) << e.name;
    if (e.mode != 0) {
      zip_file_set_external_attributes(za, static_cast<zip_uint64_t>(index), 0, ZIP_OPSYS_UNIX,
                                       e.mode << 16);
    }
  }
  EXPECT_EQ(zip_close(za), 0) << zip_strerror(za);
  zip_error_fini(&error);
  EXPECT_EQ(zip_source_open(out), 0);
  std::string bytes;
  char buf[65536];
  zip_int64_t n;
  while ((n = zip_source_read(out, buf, sizeof(buf))) > 0) bytes.append(buf, n);
  zip_source_close(out);
  zip_source_free(out);
  return bytes;
}

// Rewrites the declared uncompressed size of a single-entry zip, in both the
// local header and the central directory, leaving the data alone.
std::string LieAboutSize(std::string zip, uint32_t declared) {
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) zip[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  EXPECT_EQ(zip.compare(0, 4, "PK\3\4"), 0);
  put32(22, declared);
  size_t central = zip.rfind(std::string("PK\1\2", 4));
  EXPECT_NE(central, std::string::npos);
  put32(central + 24, declared);
  return zip;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void ExpectRejected(const std::string& zip, const std::string& message) {
  auto v = ValidateZip(zip);
  EXPECT_EQ(v.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(v.status().message(), message);
  TempDir dir;
  Status s = ExtractZip(zip, dir / "out");
  EXPECT_EQ(s.message(), message);
  EXPECT_FALSE(fs::exists(dir / "out"));  // rejected whole: nothing written
}

TEST(ValidateZipTest, AcceptsAGoodZip) {
  std::string zip = BuildZip({{"app.py", "print(1)\n"},
                              Dir("pkg/"),
                              {"pkg/__init__.py", ""},
                              {"./pkg/mod.py", std::string(1000, 'm')},
                              Link("lib", "pkg")});
  auto info = ValidateZip(zip);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->entries, 5);
  EXPECT_EQ(info->unzipped_bytes, 9u + 0u + 1000u + 3u);
}

TEST(ValidateZipTest, NotAZip) {
  ExpectRejected("this is not a zip file at all", kNotAZip);
  ExpectRejected("", kNotAZip);
  std::string truncated = BuildZip({{"a.py", std::string(5000, 'a')}});
  truncated.resize(truncated.size() / 2);
  ExpectRejected(truncated, kNotAZip);
}

TEST(ValidateZipTest, RejectsPathsLeavingTheBundle) {
  ExpectRejected(BuildZip({{"ok.py", "x"}, {"../evil.py", "x"}}),
                 "zip entry '../evil.py' escapes the bundle");
  ExpectRejected(BuildZip({{"a/../../evil.py", "x"}}),
                 "zip entry 'a/../../evil.py' escapes the bundle");
  ExpectRejected(BuildZip({{"a/..", "x"}}), "zip entry 'a/..' escapes the bundle");
  ExpectRejected(BuildZip({{"/etc/passwd", "x"}}), "zip entry '/etc/passwd' has an absolute path");
}

TEST(ValidateZipTest, RejectsEscapingSymlinks) {
  ExpectRejected(BuildZip({Link("passwd", "/etc/passwd")}),
                 "zip entry 'passwd' is a symlink to an absolute path: '/etc/passwd'");
  ExpectRejected(BuildZip({Link("up", "..")}),
                 "zip entry 'up' is a symlink pointing outside the bundle: '..'");
  ExpectRejected(BuildZip({Dir("a/"), Link("a/b/up", "../../../etc")}),
                 "zip entry 'a/b/up' is a symlink pointing outside the bundle: '../../../etc'");
  // Lexically "y/.." is ".", but the kernel follows y first: y/.. is the parent.
  ExpectRejected(BuildZip({Link("y", "sub/deeper"), Link("x", "y/../../..")}),
                 "zip entry 'x' is a symlink pointing outside the bundle: 'y/../../..'");
  ExpectRejected(BuildZip({Link("y", "."), Link("x", "y/..")}),
                 "zip entry 'x' is a symlink pointing outside the bundle: 'y/..'");
  // Writing through a symlink is refused even if the link looks harmless.
  ExpectRejected(BuildZip({Link("d", "sub"), {"d/evil.py", "x"}}),
                 "zip entry 'd/evil.py' is inside 'd', which is not a directory");
}

TEST(ValidateZipTest, AcceptsSymlinksInsideTheBundle) {
  EXPECT_TRUE(ValidateZip(BuildZip({Dir("a/b/"), Link("a/b/up", "../../x"), {"x", "1"}})).ok());
  EXPECT_TRUE(ValidateZip(BuildZip({Link("self", "./.")})).ok());
}

TEST(ValidateZipTest, RejectsOtherFileTypesAndDuplicates) {
  ExpectRejected(BuildZip({{"fifo", "", S_IFIFO | 0644}}),
                 "zip entry 'fifo' is not a regular file, directory or symlink");
  ExpectRejected(BuildZip({{"a.py", "1"}, {"./a.py", "2"}}), "zip entry './a.py' appears twice");
  ExpectRejected(BuildZip({{"a", "1"}, {"a/b.py", "2"}}),
                 "zip entry 'a/b.py' is inside 'a', which is not a directory");
}

TEST(ValidateZipTest, SizeLimit) {
  std::string zip = BuildZip({{"a", std::string(150, 'a')}, {"b", std::string(150, 'b')}});
  EXPECT_TRUE(ValidateZip(zip, 300).ok());
  auto r = ValidateZip(zip, 299);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "Unzipped size must be smaller than 299 bytes");
  // Declared sizes over Lambda's limit are refused before anything is inflated.
  std::string huge = LieAboutSize(BuildZip({{"big", std::string(100, 'x')}}), 300000000);
  ExpectRejected(huge, "Unzipped size must be smaller than 262144000 bytes");
}

TEST(ValidateZipTest, TooManyEntries) {
  std::vector<ZEntry> entries;
  for (int i = 0; i <= 100000; ++i) entries.push_back({std::to_string(i), "", 0, ZIP_CM_STORE});
  std::string zip = BuildZip(entries);
  auto r = ValidateZip(zip);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "zip has 100001 entries, more than the limit of 100000");
  entries.pop_back();
  EXPECT_TRUE(ValidateZip(BuildZip(entries)).ok());
}

TEST(ExtractZipTest, ExtractsContentsWithModes) {
  TempDir dir;
  std::string dest = dir / "bundle";
  std::string zip = BuildZip({{"app.py", "print(1)\n", S_IFREG | 0600},
                              {"bin/run", "#!/bin/sh\n", S_IFREG | 0700},
                              {"deep/er/x.txt", "x", 0},
                              Dir("empty/"),
                              Link("lib", "deep/er")});
  ASSERT_TRUE(ExtractZip(zip, dest).ok());
  EXPECT_EQ(ReadFile(dest + "/app.py"), "print(1)\n");
  EXPECT_EQ(ReadFile(dest + "/bin/run"), "#!/bin/sh\n");
  EXPECT_EQ(ReadFile(dest + "/lib/x.txt"), "x");
  EXPECT_EQ(ModeOf(dest), 0755u);
  EXPECT_EQ(ModeOf(dest + "/app.py"), 0644u);  // world-readable, never writable by others
  EXPECT_EQ(ModeOf(dest + "/bin/run"), 0755u);
  EXPECT_EQ(ModeOf(dest + "/deep/er/x.txt"), 0644u);
  EXPECT_EQ(ModeOf(dest + "/deep"), 0755u);
  EXPECT_EQ(ModeOf(dest + "/empty"), 0755u);
  EXPECT_TRUE(fs::is_symlink(dest + "/lib"));
  EXPECT_EQ(fs::read_symlink(dest + "/lib"), "deep/er");
  struct stat st;
  ASSERT_EQ(stat((dest + "/app.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, geteuid());
}

TEST(ExtractZipTest, DestinationMustNotExist) {
  TempDir dir;
  Status s = ExtractZip(BuildZip({{"a.py", "1"}}), dir.path());
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_FALSE(fs::exists(dir / "a.py"));
}

TEST(ExtractZipTest, StopsWhenAnEntryHoldsMoreThanDeclared) {
  // A bomb: 4 MB of zeros that claims to be 1000 bytes.
  std::string bomb = LieAboutSize(BuildZip({{"bomb.txt", std::string(4 << 20, '\0')}}), 1000);
  auto info = ValidateZip(bomb);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->unzipped_bytes, 1000u);
  TempDir dir;
  Status s = ExtractZip(bomb, dir / "out");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "zip entry 'bomb.txt' holds more bytes than its declared size of 1000");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(ExtractZipTest, FailsWhenAnEntryHoldsLessThanDeclared) {
  std::string zip = LieAboutSize(
      BuildZip({{"short.txt", std::string(100, 's'), S_IFREG | 0644, ZIP_CM_STORE}}), 5000);
  TempDir dir;
  Status s = ExtractZip(zip, dir / "out");
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(fs::exists(dir / "out"));
}

class ZipDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_ / "src";
    WriteFile(src_ + "/app.py", "def handler(e, c):\n  return 1\n");
    WriteFile(src_ + "/run.sh", "#!/bin/sh\n", 0755);
    WriteFile(src_ + "/pkg/__init__.py", "");
    WriteFile(src_ + "/pkg/__pycache__/mod.cpython-311.pyc", "junk");
    WriteFile(src_ + "/stale.pyc", "junk");
    WriteFile(src_ + "/.git/HEAD", "ref: refs/heads/main\n");
    fs::create_directories(src_ + "/data");
    fs::create_symlink("pkg", src_ + "/lib");
  }
  TempDir dir_;
  std::string src_;
};

TEST_F(ZipDirectoryTest, RoundTripSkipsJunkAndKeepsExecBit) {
  auto zip = ZipDirectory(src_);
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  auto info = ValidateZip(*zip);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::string out = dir_ / "out";
  ASSERT_TRUE(ExtractZip(*zip, out).ok());
  EXPECT_EQ(ReadFile(out + "/app.py"), "def handler(e, c):\n  return 1\n");
  EXPECT_EQ(ModeOf(out + "/run.sh"), 0755u);
  EXPECT_EQ(ModeOf(out + "/app.py"), 0644u);
  EXPECT_TRUE(fs::exists(out + "/pkg/__init__.py"));
  EXPECT_TRUE(fs::is_directory(out + "/data"));
  EXPECT_TRUE(fs::is_symlink(out + "/lib"));
  EXPECT_FALSE(fs::exists(out + "/pkg/__pycache__"));
  EXPECT_FALSE(fs::exists(out + "/stale.pyc"));
  EXPECT_FALSE(fs::exists(out + "/.git"));
}

TEST_F(ZipDirectoryTest, SameTreeGivesSameBytes) {
  auto first = ZipDirectory(src_);
  ASSERT_TRUE(first.ok());
  // Timestamps, non-exec permission bits and junk do not matter.
  struct timespec times[2] = {{1000000, 0}, {1000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (src_ + "/app.py").c_str(), times, 0), 0);
  ASSERT_EQ(chmod((src_ + "/app.py").c_str(), 0600), 0);
  WriteFile(src_ + "/pkg/__pycache__/other.pyc", "more junk");
  auto second = ZipDirectory(src_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Sha256Hex(*first), Sha256Hex(*second));
  // Content and exec bits do.
  ASSERT_EQ(chmod((src_ + "/app.py").c_str(), 0700), 0);
  EXPECT_NE(Sha256Hex(*first), Sha256Hex(ZipDirectory(src_).value()));
  ASSERT_EQ(chmod((src_ + "/app.py").c_str(), 0644), 0);
  WriteFile(src_ + "/app.py", "changed");
  EXPECT_NE(Sha256Hex(*first), Sha256Hex(ZipDirectory(src_).value()));
}

TEST_F(ZipDirectoryTest, Errors) {
  EXPECT_EQ(ZipDirectory(dir_ / "missing").status().code(), Code::kInvalidArgument);
  fs::create_directories(dir_ / "empty/__pycache__");
  EXPECT_EQ(ZipDirectory(dir_ / "empty").status().code(), Code::kInvalidArgument);
}

TEST(BundleCacheTest, EnsureExtractsOnceAndRemoves) {
  TempDir dir;
  BundleCache cache(dir / "bundles");
  std::string zip = BuildZip({{"app.py", "v1"}});
  std::string digest = Sha256Hex(zip);
  EXPECT_FALSE(cache.Contains(digest));
  auto path = cache.Ensure(digest, zip);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, cache.DirOf(digest));
  EXPECT_EQ(*path, dir / ("bundles/" + digest));
  EXPECT_EQ(ReadFile(*path + "/app.py"), "v1");
  EXPECT_TRUE(cache.Contains(digest));

  // Cached: the bytes are not even looked at again.
  auto again = cache.Ensure(digest, "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *path);

  ASSERT_TRUE(cache.Remove(digest).ok());
  EXPECT_FALSE(cache.Contains(digest));
  EXPECT_EQ(cache.Remove(digest).code(), Code::kNotFound);
  EXPECT_EQ(std::distance(fs::directory_iterator(cache.root()), fs::directory_iterator()), 0);
}

TEST(BundleCacheTest, RejectsBadDigestsAndBadZips) {
  TempDir dir;
  BundleCache cache(dir / "bundles");
  std::string zip = BuildZip({{"app.py", "v1"}});
  EXPECT_EQ(cache.Ensure(Sha256Hex("other"), zip).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cache.Ensure("../escape", zip).status().code(), Code::kInvalidArgument);
  std::string evil = BuildZip({{"../evil.py", "x"}});
  auto r = cache.Ensure(Sha256Hex(evil), evil);
  EXPECT_EQ(r.status().message(), "zip entry '../evil.py' escapes the bundle");
  // No temp directories are left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(cache.root()), fs::directory_iterator()), 0);
}

TEST(BundleCacheTest, ConcurrentEnsureAgrees) {
  TempDir dir;
  BundleCache cache(dir / "bundles");
  std::vector<ZEntry> entries;
  for (int i = 0; i < 50; ++i) entries.push_back({"m" + std::to_string(i) + ".py", "x"});
  std::string zip = BuildZip(entries);
  std::string digest = Sha256Hex(zip);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto r = cache.Ensure(digest, zip);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) {
        EXPECT_EQ(ReadFile(*r + "/m7.py"), "x");
      }
    });
  }
  for (auto& t : threads) t.join();
  // Exactly the bundle: losers of the rename race cleaned up after themselves.
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(cache.root())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{digest});
  EXPECT_EQ(std::distance(fs::directory_iterator(cache.DirOf(digest)), fs::directory_iterator()),
            50);
}

}  // namespace
}  // namespace gust

#include "cli/package.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace gust::cli {
namespace {

namespace fs = std::filesystem;

class PackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gust-package-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    ::unsetenv("VIRTUAL_ENV");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& text = "x") {
    fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }

  StageSettings Settings(std::vector<std::string> exclude = {}) {
    StageSettings s;
    s.stage = "dev";
    s.source_file = root_ + "/gust_settings.json";
    s.exclude = std::move(exclude);
    return s;
  }

  // The file names inside a bundle, read back by extracting it.
  std::set<std::string> Names(const Bundle& b) {
    std::string dest = root_ + "-out";
    fs::remove_all(dest);
    EXPECT_TRUE(ExtractZip(b.zip, dest).ok());
    std::set<std::string> names;
    for (const auto& de : fs::recursive_directory_iterator(dest)) {
      if (de.is_regular_file()) names.insert(de.path().lexically_relative(dest).generic_string());
    }
    fs::remove_all(dest);
    return names;
  }

  std::string root_;
};

TEST_F(PackageTest, ProjectMinusJunkAndExcludes) {
  Write("app.py", "print(1)");
  Write("gust_settings.json", "{}");
  Write("models/model.pkl", "m");
  Write("notes.ipynb");
  Write("data/raw/big.csv");
  Write("pkg/__init__.py");
  Write("pkg/__pycache__/x.cpython-311.pyc");
  Write(".git/HEAD");
  Write("old-bundle.zip");
  Write("other-venv/pyvenv.cfg", "home = /usr/bin");
  Write("other-venv/lib/python3.11/site-packages/leak.py");
  auto b = PackageStage(Settings({"*.ipynb", "data/"}), root_);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(Names(*b), (std::set<std::string>{"app.py", "gust_settings.json", "models/model.pkl",
                                              "pkg/__init__.py"}));
  EXPECT_EQ(b->files, 4);
  EXPECT_TRUE(b->venv_dir.empty());
}

TEST_F(PackageTest, VenvPackagesAtTheRootWithoutTooling) {
  Write("app.py");
  Write("venv/pyvenv.cfg", "home = /usr/bin");
  std::string site = "venv/lib/python3.11/site-packages/";
  Write(site + "tinyfmt/__init__.py", "def fmt(x): return str(x)");
  Write(site + "tinyfmt-1.2.dist-info/METADATA", "Name: tinyfmt");
  Write(site + "pip/__init__.py");
  Write(site + "pip-23.0.1.dist-info/METADATA");
  Write(site + "setuptools/__init__.py");
  Write(site + "_distutils_hack/__init__.py");
  Write(site + "distutils-precedence.pth");
  auto b = PackageStage(Settings(), root_);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(Names(*b), (std::set<std::string>{"app.py", "tinyfmt/__init__.py",
                                              "tinyfmt-1.2.dist-info/METADATA"}));
  EXPECT_EQ(b->venv_packages, std::vector<std::string>{"tinyfmt 1.2"});
  EXPECT_NE(b->venv_dir.find("venv"), std::string::npos);
  EXPECT_TRUE(b->warnings.empty());
}

TEST_F(PackageTest, NamedVenvMustExistAndOtherPythonsWarn) {
  Write("app.py");
  StageSettings s = Settings();
  s.venv = "nope";
  auto missing = PackageStage(s, root_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("not a virtualenv"), std::string::npos);

  Write("env312/pyvenv.cfg", "home = /usr/local/bin");
  Write("env312/lib/python3.12/site-packages/x.py");
  s.venv = "env312";
  auto b = PackageStage(s, root_);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->warnings.size(), 1u);
  EXPECT_NE(b->warnings[0].find("python3.12"), std::string::npos);
}

TEST_F(PackageTest, OverLimitBundleIsRefusedWithItsSize) {
  Write("app.py");
  Write("weights.bin", std::string(5000, 'w'));
  PackageLimits limits;
  limits.max_unzipped_bytes = 4096;
  auto b = PackageStage(Settings(), root_, limits);
  ASSERT_FALSE(b.ok());
  const std::string& m = b.status().message();
  EXPECT_NE(m.find("5001 bytes"), std::string::npos) << m;   // its size
  EXPECT_NE(m.find("4096 bytes"), std::string::npos) << m;   // the limit
  EXPECT_NE(m.find("weights.bin"), std::string::npos) << m;  // what to exclude
  EXPECT_NE(m.find("exclude"), std::string::npos) << m;

  limits.max_unzipped_bytes = 1 << 20;
  limits.max_zip_bytes = 10;
  auto z = PackageStage(Settings(), root_, limits);
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("zipped bundle"), std::string::npos);
}

TEST_F(PackageTest, EverythingExcludedIsAnError) {
  Write("app.py");
  auto b = PackageStage(Settings({"*.py"}), root_);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("every file is excluded"), std::string::npos);
}

}  // namespace
}  // namespace gust::cli

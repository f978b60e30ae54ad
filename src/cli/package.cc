#include "cli/package.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "cli/api_client.h"

namespace gust::cli {
namespace {

namespace fs = std::filesystem;

// Directories never worth shipping.
const std::set<std::string>& JunkDirs() {
  static const std::set<std::string> names = {
      ".git",        ".hg",         ".svn",  "__pycache__", ".pytest_cache",
      ".mypy_cache", ".ruff_cache", ".tox",  ".nox",        ".ipynb_checkpoints",
      ".idea",       ".vscode",     ".eggs", ".cache"};
  return names;
}

// Files never worth shipping (Zappa leaves out archives too: old bundles).
bool IsJunkFile(const std::string& name) {
  for (const char* pattern : {"*.pyc", "*.pyo", ".DS_Store", "*.zip", "*.tar.gz", "*.swp"}) {
    if (::fnmatch(pattern, name.c_str(), 0) == 0) return true;
  }
  return false;
}

// Packaging tools in a virtualenv's site-packages: the runtime does not need them.
bool IsToolingEntry(const std::string& name) {
  for (const char* pattern : {"pip", "pip-*", "setuptools", "setuptools-*", "pkg_resources",
                              "_distutils_hack", "distutils-precedence.pth", "wheel", "wheel-*",
                              "easy_install.py", "_virtualenv.*", "__pycache__"}) {
    if (::fnmatch(pattern, name.c_str(), 0) == 0) return true;
  }
  return false;
}

bool IsVenv(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "pyvenv.cfg", ec);
}

class Packer {
 public:
  Packer(const StageSettings& settings, Bundle& bundle) : settings_(settings), bundle_(bundle) {}

  bool Excluded(const std::string& rel, const std::string& name) const {
    for (const auto& pattern : settings_.exclude) {
      std::string p = pattern;
      while (p.size() > 1 && p.back() == '/') p.pop_back();  // "data/" names a directory
      if (::fnmatch(p.c_str(), rel.c_str(), 0) == 0 || ::fnmatch(p.c_str(), name.c_str(), 0) == 0)
        return true;
    }
    return false;
  }

  // Adds the files under `root`, named by their paths below it. site_packages:
  // root is a virtualenv's site-packages (packaging tools are left out, the
  // *.dist-info names listed). skip_dir: a directory left out (the venv).
  Status AddTree(const fs::path& root, bool site_packages, const fs::path& skip_dir) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
    if (ec) return Status::IoError("cannot read " + root.string() + ": " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) return Status::IoError("cannot read " + root.string() + ": " + ec.message());
      const fs::directory_entry& de = *it;
      std::string name = de.path().filename().string();
      std::string rel = de.path().lexically_relative(root).generic_string();
      bool is_dir = de.is_directory(ec);
      bool is_link = de.is_symlink(ec);
      auto skip = [&] {
        if (is_dir && !is_link) it.disable_recursion_pending();
      };
      if (site_packages && it.depth() == 0 && IsToolingEntry(name)) {
        skip();
        continue;
      }
      if (is_dir) {
        if (JunkDirs().count(name) || (!skip_dir.empty() && de.path() == skip_dir) ||
            IsVenv(de.path()) || Excluded(rel, name)) {
          skip();
          continue;
        }
        if (is_link) {
          bundle_.warnings.push_back("skipped " + rel + ": a symlink to a directory");
          continue;
        }
        if (site_packages && it.depth() == 0 && name.size() > 10 && name.ends_with(".dist-info")) {
          std::string stem = name.substr(0, name.size() - 10);
          size_t dash = stem.find('-');
          bundle_.venv_packages.push_back(dash == std::string::npos
                                              ? stem
                                              : stem.substr(0, dash) + " " + stem.substr(dash + 1));
        }
        continue;  // directories are implied by their files
      }
      if (IsJunkFile(name) || Excluded(rel, name)) continue;
      if (!de.is_regular_file(ec)) {
        if (is_link) bundle_.warnings.push_back("skipped " + rel + ": a broken symlink");
        continue;
      }
      if (!seen_.insert(rel).second) continue;  // the project's own file wins over the venv's
      uint64_t size = de.file_size(ec);
      ZipEntry entry;
      entry.name = rel;
      entry.path = de.path().string();
      entry.executable = (de.status(ec).permissions() & fs::perms::owner_exec) != fs::perms::none;
      entries_.push_back(std::move(entry));
      sizes_.push_back({size, rel});
      bundle_.unzipped_bytes += size;
    }
    return Status::Ok();
  }

  Status CheckSize(uint64_t max_unzipped) const {
    if (bundle_.unzipped_bytes <= max_unzipped) return Status::Ok();
    auto largest = sizes_;
    std::sort(largest.begin(), largest.end(), std::greater<>());
    std::string top;
    for (size_t i = 0; i < largest.size() && i < 3; ++i) {
      top += (i ? ", " : "") + largest[i].second + " " + HumanBytes(largest[i].first);
    }
    return Status::InvalidArgument(
        "the bundle is " + HumanBytes(bundle_.unzipped_bytes) + " (" +
        std::to_string(bundle_.unzipped_bytes) + " bytes) unzipped, over the limit of " +
        HumanBytes(max_unzipped) + " (" + std::to_string(max_unzipped) +
        " bytes); largest files: " + top + " — leave files out with \"exclude\" in " +
        fs::path(settings_.source_file).filename().string());
  }

  std::vector<ZipEntry>& entries() { return entries_; }

 private:
  const StageSettings& settings_;
  Bundle& bundle_;
  std::vector<ZipEntry> entries_;
  std::vector<std::pair<uint64_t, std::string>> sizes_;
  std::set<std::string> seen_;
};

// The project's virtualenv (see package.h), or "" if it has none.
Result<fs::path> FindVenv(const StageSettings& s, const fs::path& project) {
  if (!s.venv.empty()) {
    fs::path v = fs::path(s.venv).is_absolute() ? fs::path(s.venv) : project / s.venv;
    if (!IsVenv(v))
      return Status::InvalidArgument("venv \"" + s.venv + "\" in " + s.source_file +
                                     " is not a virtualenv (no pyvenv.cfg in " + v.string() + ")");
    return v;
  }
  if (const char* env = std::getenv("VIRTUAL_ENV"); env && *env && IsVenv(env))
    return fs::path(env);
  for (const char* name : {"venv", ".venv"}) {
    if (IsVenv(project / name)) return project / name;
  }
  return fs::path();
}

// <venv>/lib/python3.X/site-packages; warns when X is not the runtime's 3.11.
fs::path SitePackages(const fs::path& venv, Bundle& bundle) {
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(venv / "lib", ec)) {
    std::string name = de.path().filename().string();
    if (name.rfind("python", 0) != 0 || !fs::is_directory(de.path() / "site-packages", ec))
      continue;
    if (name != "python3.11") {
      bundle.warnings.push_back("the virtualenv " + venv.string() + " is for " + name +
                                "; the runtime is python3.11, so compiled packages may not import");
    }
    return de.path() / "site-packages";
  }
  return fs::path();
}

}  // namespace

Result<Bundle> PackageStage(const StageSettings& settings, const std::string& project_dir,
                            const PackageLimits& limits) {
  std::error_code ec;
  fs::path project = fs::weakly_canonical(project_dir, ec);
  if (ec || !fs::is_directory(project))
    return Status::NotFound("project directory " + project_dir + " does not exist");
  Bundle bundle;
  GUST_ASSIGN_OR_RETURN(fs::path venv, FindVenv(settings, project));
  Packer packer(settings, bundle);
  GUST_RETURN_IF_ERROR(packer.AddTree(project, false, venv));
  if (!venv.empty()) {
    bundle.venv_dir = venv.string();
    fs::path site = SitePackages(venv, bundle);
    if (site.empty()) {
      bundle.warnings.push_back("the virtualenv " + venv.string() +
                                " has no lib/python3.*/site-packages: nothing bundled from it");
    } else {
      GUST_RETURN_IF_ERROR(packer.AddTree(site, true, fs::path()));
    }
    std::sort(bundle.venv_packages.begin(), bundle.venv_packages.end());
  }
  GUST_RETURN_IF_ERROR(packer.CheckSize(limits.max_unzipped_bytes));
  bundle.files = static_cast<int>(packer.entries().size());
  if (bundle.files == 0)
    return Status::InvalidArgument("nothing to package in " + project.string() +
                                   " (every file is excluded)");
  GUST_ASSIGN_OR_RETURN(bundle.zip, ZipEntries(std::move(packer.entries())));
  if (bundle.zip.size() > limits.max_zip_bytes) {
    return Status::InvalidArgument(
        "the zipped bundle is " + HumanBytes(bundle.zip.size()) + " (" +
        std::to_string(bundle.zip.size()) + " bytes), over the upload limit of " +
        HumanBytes(limits.max_zip_bytes) + " (" + std::to_string(limits.max_zip_bytes) + " bytes)");
  }
  return bundle;
}

}  // namespace gust::cli

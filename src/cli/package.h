// Packaging a project stage into a code bundle (`gust deploy/update/package
// STAGE`), the way Zappa builds its zip:
//
//  - the project directory, minus the stage's `exclude` patterns and obvious
//    junk (.git and other VCS dirs, __pycache__/*.pyc, tool caches, virtualenvs,
//    *.zip and *.tar.gz as Zappa leaves out, editor dirs);
//  - the packages installed in the project's virtualenv (its site-packages,
//    at the bundle's root so they import as usual), minus the packaging tools
//    (pip, setuptools, wheel). Packages of the system Python are not bundled:
//    the runtime's Python already has them.
//
// The virtualenv is the stage's "venv" setting, else $VIRTUAL_ENV, else
// ./venv or ./.venv of the project (a directory holding pyvenv.cfg). One made
// from another Python than the runtime's 3.11 gets a warning.
//
// An exclude pattern is a glob (fnmatch) matched against both an entry's path
// inside the bundle ("data/*.csv") and its name ("*.ipynb"); a matching
// directory is skipped whole. A bundle over the limits is refused before
// anything is uploaded, with its size and its largest files.
//
// Thread-safety: pure function over the filesystem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/settings.h"
#include "common/status.h"
#include "store/code_bundle.h"

namespace gust::cli {

struct Bundle {
  std::string zip;
  uint64_t unzipped_bytes = 0;
  int files = 0;
  std::string venv_dir;                    // "" if the project has none
  std::vector<std::string> venv_packages;  // "requests 2.31.0", from *.dist-info names
  std::vector<std::string> warnings;
};

struct PackageLimits {
  uint64_t max_unzipped_bytes = kMaxUnzippedBytes;
  uint64_t max_zip_bytes = kMaxZipBytes;
};

Result<Bundle> PackageStage(const StageSettings& settings, const std::string& project_dir,
                            const PackageLimits& limits = {});

}  // namespace gust::cli

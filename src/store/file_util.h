// Small POSIX file helpers the file-backed stores share (blob_store.cc,
// object_store.cc): complete writes, directory fsync, mkdir that tolerates an
// existing directory.
//
// Errors: IoError naming the path and errno's text. Thread-safety: stateless.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace gust {

// Writes all of bytes to fd (retrying short writes and EINTR).
Status WriteAll(int fd, std::string_view bytes, const std::string& path);
// fsyncs a directory, so a rename or unlink in it survives a crash.
Status FsyncDir(const std::string& dir);
// mkdir with mode; an existing directory is fine.
Status MakeDir(const std::string& dir, mode_t mode = 0755);

}  // namespace gust

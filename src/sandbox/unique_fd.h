// UniqueFd: sole owner of a file descriptor, closed (through the OS seam) on
// destruction. Move-only. Not thread-safe; a value type like unique_ptr.
#pragma once

#include <utility>

#include "sandbox/os_seam.h"

namespace gust::sandbox {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) Os().close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace gust::sandbox

// Status and Result<T>: errors as values across gust.
//
// A Status is either OK or carries a Code and a human-readable message that
// names the problem ("memory size 64 is below the minimum of 128 MB"). Codes map
// one-to-one onto the error classes the Lambda API reports, so the API layer
// translates without guessing. Result<T> holds a T or a non-OK Status.
//
// Thread-safety: values; safe to copy between threads. Exceptions are used only
// at the edges (main(), third-party callbacks) and converted to Status there.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/check.h"

namespace gust {

enum class Code {
  kOk = 0,
  kInvalidArgument,   // 400 InvalidParameterValueException
  kNotFound,          // 404 ResourceNotFoundException
  kConflict,          // 409 ResourceConflictException
  kTooManyRequests,   // 429 TooManyRequestsException
  kTooLarge,          // 413 RequestTooLargeException
  kUnsupportedMedia,  // 415 UnsupportedMediaTypeException
  kUnavailable,       // 503: a dependency (zygote, sandbox) is not there right now
  kTimeout,           // deadline passed
  kIoError,           // the OS said no (errno in the message)
  kInternal,          // a bug or an invariant broken: 500 ServiceException
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status TooManyRequests(std::string m) { return {Code::kTooManyRequests, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  // IoError whose message ends with strerror(err): "open /x: No such file or directory".
  static Status FromErrno(std::string_view what, int err);
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: function 'x' does not exist", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Holds either a value or a non-OK Status. Accessing value() of an error is a
// bug and a CHECK failure (common/check.h); check ok() first (or use GUST_ASSIGN_OR_RETURN).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT
    GUST_CHECK(!std::get<Status>(data_).ok(), "Result built from an OK Status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & {
    GUST_CHECK(ok(), "value() of a Result that holds an error");
    return std::get<T>(data_);
  }
  const T& value() const& {
    GUST_CHECK(ok(), "value() of a Result that holds an error");
    return std::get<T>(data_);
  }
  T&& value() && {
    GUST_CHECK(ok(), "value() of a Result that holds an error");
    return std::get<T>(std::move(data_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace gust

#define GUST_CONCAT_INNER(a, b) a##b
#define GUST_CONCAT(a, b) GUST_CONCAT_INNER(a, b)

#define GUST_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::gust::Status gust_status_ = (expr);        \
    if (!gust_status_.ok()) return gust_status_; \
  } while (0)
// NOLINTBEGIN(bugprone-macro-parentheses): tmp is a name, lhs a declaration (auto x)
#define GUST_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
// GUST_ASSIGN_OR_RETURN(auto x, ComputeX()); returns the Status on error.
#define GUST_ASSIGN_OR_RETURN(lhs, expr) \
  GUST_ASSIGN_OR_RETURN_IMPL(GUST_CONCAT(gust_result_, __LINE__), lhs, expr)

// LogSink: function logs (the invocation's stdout/stderr framed by Lambda's
// START / END / REPORT lines) appended to <dir>/<function>.log by a background
// thread, and read back by offset for `gust logs` and `gust logs --follow`.
//
// File format: one entry per line, "<epoch ms>\t<text>". A function's log
// survives engine restarts; it is removed with the function.
//
// Thread-safety: Append/Flush from any thread; Read is a free-standing file read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/batch_worker.h"
#include "common/status.h"

namespace gust::engine {

struct LogChunk {
  std::string text;  // entries, each "<epoch ms>\t<text>\n"
  uint64_t next_offset = 0;
};

class LogSink {
 public:
  explicit LogSink(std::string dir);
  ~LogSink();
  // text may hold several lines; each becomes an entry stamped ts_ms.
  void Append(const std::string& function, const std::string& text, int64_t ts_ms);
  void Flush();
  // Removes a function's log (after the function is deleted).
  void Remove(const std::string& function);
  const std::string& dir() const { return dir_; }

  // Entries at or after since_ms from byte offset on, at most ~max_bytes.
  // A missing file is an empty chunk (the function may not have run yet).
  static Result<LogChunk> Read(const std::string& dir, const std::string& function,
                               int64_t since_ms, uint64_t offset, size_t max_bytes);

 private:
  struct Entry {
    std::string function;
    std::string text;  // already formatted lines
  };
  void Write(std::vector<Entry>& batch);

  std::string dir_;
  std::unique_ptr<BatchWorker<Entry>> worker_;
};

}  // namespace gust::engine

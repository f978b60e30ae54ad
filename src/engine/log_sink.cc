#include "engine/log_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>

namespace gust::engine {

LogSink::LogSink(std::string dir) : dir_(std::move(dir)) {
  ::mkdir(dir_.c_str(), 0750);
  worker_ = std::make_unique<BatchWorker<Entry>>([this](std::vector<Entry>& b) { Write(b); }, 512,
                                                 std::chrono::milliseconds(50));
}

LogSink::~LogSink() { worker_.reset(); }

void LogSink::Append(const std::string& function, const std::string& text, int64_t ts_ms) {
  std::string stamp = std::to_string(ts_ms);
  std::string formatted;
  formatted.reserve(text.size() + 32);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    formatted += stamp;
    formatted += '\t';
    formatted.append(text, start, end - start);
    formatted += '\n';
    start = end + 1;
  }
  if (formatted.empty()) return;
  worker_->Push(Entry{function, std::move(formatted)});
}

void LogSink::Flush() { worker_->Flush(); }

void LogSink::Remove(const std::string& function) {
  Flush();
  ::unlink((dir_ + "/" + function + ".log").c_str());
}

void LogSink::Write(std::vector<Entry>& batch) {
  // Group per function so each file gets one write per batch.
  std::map<std::string, std::string> per_file;
  for (auto& e : batch) per_file[e.function] += e.text;
  for (auto& [function, text] : per_file) {
    std::string path = dir_ + "/" + function + ".log";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) continue;  // logs are best effort; the invocation result is not affected
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(fd, text.data() + off, text.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }
}

Result<LogChunk> LogSink::Read(const std::string& dir, const std::string& function,
                               int64_t since_ms, uint64_t offset, size_t max_bytes) {
  LogChunk chunk;
  chunk.next_offset = offset;
  std::string path = dir + "/" + function + ".log";
  FILE* f = std::fopen(path.c_str(), "re");
  if (!f) return chunk;
  if (std::fseek(f, static_cast<long>(offset), SEEK_SET) != 0) {
    std::fclose(f);
    return chunk;
  }
  char* line = nullptr;
  size_t cap = 0;
  ssize_t len;
  while (chunk.text.size() < max_bytes && (len = ::getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n') break;  // a partially written line: read it next time
    chunk.next_offset += static_cast<uint64_t>(len);
    int64_t ts = std::strtoll(line, nullptr, 10);
    if (ts >= since_ms) chunk.text.append(line, static_cast<size_t>(len));
  }
  std::free(line);
  std::fclose(f);
  return chunk;
}

}  // namespace gust::engine

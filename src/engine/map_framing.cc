#include "engine/map_framing.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace gust::engine {
namespace {

void PutU32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
               static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
  out.append(b, 4);
}

// Reads a u32 at *pos; false if fewer than 4 bytes remain.
bool GetU32(std::string_view in, size_t* pos, uint32_t* v) {
  if (in.size() - *pos < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data() + *pos);
  *v = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  *pos += 4;
  return true;
}

// A length-prefixed string at *pos.
bool GetBlock(std::string_view in, size_t* pos, std::string_view* out) {
  uint32_t len;
  if (!GetU32(in, pos, &len) || in.size() - *pos < len) return false;
  *out = in.substr(*pos, len);
  *pos += len;
  return true;
}

}  // namespace

Result<JobBody> ParseJobBody(std::string_view body, size_t max_task_bytes) {
  size_t nl = body.find('\n');
  if (nl == std::string_view::npos) {
    return Status::InvalidArgument("job body must start with a JSON header line ending in \\n");
  }
  JobBody job;
  job.header = nlohmann::json::parse(body.substr(0, nl), nullptr, false);
  if (!job.header.is_object()) {
    return Status::InvalidArgument("job header is not a JSON object");
  }
  size_t pos = nl + 1;
  while (pos < body.size()) {
    uint32_t len;
    size_t at = pos;
    if (!GetU32(body, &pos, &len)) {
      return Status::InvalidArgument("task " + std::to_string(job.tasks.size()) +
                                     ": truncated length prefix at byte " + std::to_string(at));
    }
    if (len > max_task_bytes) {
      return Status(Code::kTooLarge, "task " + std::to_string(job.tasks.size()) + " is " +
                                         std::to_string(len) + " bytes; the limit is " +
                                         std::to_string(max_task_bytes));
    }
    if (body.size() - pos < len) {
      return Status::InvalidArgument("task " + std::to_string(job.tasks.size()) + ": " +
                                     std::to_string(len) + " bytes announced, " +
                                     std::to_string(body.size() - pos) + " present");
    }
    job.tasks.emplace_back(body.substr(pos, len));
    pos += len;
  }
  return job;
}

std::string EncodeChunk(const std::vector<uint32_t>& indexes,
                        const std::vector<std::string>& payloads) {
  size_t size = 4;
  for (uint32_t i : indexes) size += 8 + payloads[i].size();
  std::string out;
  out.reserve(size);
  PutU32(out, static_cast<uint32_t>(indexes.size()));
  for (uint32_t i : indexes) {
    PutU32(out, i);
    PutU32(out, static_cast<uint32_t>(payloads[i].size()));
    out += payloads[i];
  }
  return out;
}

Result<ChunkAnswer> DecodeChunkAnswer(std::string_view answer) {
  size_t pos = 0;
  uint32_t count;
  ChunkAnswer out;
  if (!GetU32(answer, &pos, &count) || !GetU32(answer, &pos, &out.exec_us)) {
    return Status::InvalidArgument("chunk answer too short");
  }
  out.tasks.reserve(std::min<size_t>(count, answer.size() / 16));
  for (uint32_t n = 0; n < count; ++n) {
    TaskAnswer a;
    uint32_t status;
    if (!GetU32(answer, &pos, &a.index) || !GetU32(answer, &pos, &status) ||
        !GetBlock(answer, &pos, &a.meta) || !GetBlock(answer, &pos, &a.data)) {
      return Status::InvalidArgument("chunk answer truncated in entry " + std::to_string(n));
    }
    if (status > 1) {
      return Status::InvalidArgument("chunk answer entry " + std::to_string(n) + ": status " +
                                     std::to_string(status) + " is neither 0 (ok) nor 1 (error)");
    }
    a.ok = status == 0;
    if (a.meta.empty() || a.meta.front() != '{' || !nlohmann::json::accept(a.meta)) {
      return Status::InvalidArgument("chunk answer entry " + std::to_string(n) +
                                     ": meta is not a JSON object");
    }
    out.tasks.push_back(a);
  }
  if (pos != answer.size()) return Status::InvalidArgument("trailing bytes after chunk answer");
  return out;
}

namespace {

template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Epoch ms as JSON seconds with 3 decimals ("1796077648.602").
void AppendSeconds(std::string& out, int64_t ms) {
  if (ms < 0) ms = 0;
  AppendNumber(out, ms / 1000);
  char frac[4] = {'.', static_cast<char>('0' + ms % 1000 / 100),
                  static_cast<char>('0' + ms % 100 / 10), static_cast<char>('0' + ms % 10)};
  out.append(frac, 4);
}

}  // namespace

std::string EncodeResult(const ResultMeta& m, std::string_view body, std::string_view data) {
  std::string meta;
  meta.reserve(192 + body.size());
  meta += "{\"attempts\":";
  AppendNumber(meta, m.attempts);
  meta += m.cold ? ",\"cold\":true" : ",\"cold\":false";
  meta += ",\"sandbox\":\"";
  meta += m.sandbox;
  meta += "\",\"request_id\":\"";
  meta += m.request_id;
  meta += "\",\"t_queued\":";
  AppendSeconds(meta, m.queued_ms);
  meta += ",\"t_finished\":";
  AppendSeconds(meta, m.finished_ms);
  // body is "{...}": its members follow ours ("{}" adds none).
  std::string_view members = body.size() >= 2 ? body.substr(1, body.size() - 2) : "";
  size_t first = members.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos) {
    meta += ',';
    meta += members;
  }
  meta += '}';
  std::string out;
  out.reserve(24 + meta.size() + data.size());
  PutU32(out, static_cast<uint32_t>(m.seq & 0xffffffffu));
  PutU32(out, static_cast<uint32_t>(m.seq >> 32));
  PutU32(out, m.index);
  PutU32(out, static_cast<uint32_t>(m.status));
  PutU32(out, static_cast<uint32_t>(meta.size()));
  out += meta;
  PutU32(out, static_cast<uint32_t>(data.size()));
  out.append(data);
  return out;
}

}  // namespace gust::engine

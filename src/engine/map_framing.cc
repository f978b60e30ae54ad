#include "engine/map_framing.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/json_read.h"

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

// The formats' doubles are the host's IEEE 754 bytes: little endian only.
static_assert(std::endian::native == std::endian::little);
static_assert(sizeof(double) == 8);

bool GetF64(std::string_view in, size_t* pos, double* v) {
  if (in.size() - *pos < 8) return false;
  std::memcpy(v, in.data() + *pos, 8);
  *pos += 8;
  return true;
}

void PutF64(std::string& out, double v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}

}  // namespace

Result<JobBody> ParseJobBody(std::string_view body, size_t max_task_bytes) {
  size_t nl = body.find('\n');
  if (nl == std::string_view::npos) {
    return Status::InvalidArgument("job body must start with a JSON header line ending in \\n");
  }
  JobBody job;
  job.header = JsonParse(body.substr(0, nl));
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
  out.tasks.reserve(std::min<size_t>(count, answer.size() / 40));
  for (uint32_t n = 0; n < count; ++n) {
    TaskAnswer a;
    uint32_t status, meta_len, data_len;
    if (!GetU32(answer, &pos, &a.index) || !GetU32(answer, &pos, &status) ||
        !GetF64(answer, &pos, &a.t_start) || !GetF64(answer, &pos, &a.t_setup) ||
        !GetF64(answer, &pos, &a.t_done) || !GetU32(answer, &pos, &meta_len) ||
        !GetU32(answer, &pos, &data_len) || answer.size() - pos < size_t{meta_len} + data_len) {
      return Status::InvalidArgument("chunk answer truncated in entry " + std::to_string(n));
    }
    if (status > 1) {
      return Status::InvalidArgument("chunk answer entry " + std::to_string(n) + ": status " +
                                     std::to_string(status) + " is neither 0 (ok) nor 1 (error)");
    }
    a.ok = status == 0;
    a.meta = answer.substr(pos, meta_len);
    a.data = answer.substr(pos + meta_len, data_len);
    pos += size_t{meta_len} + data_len;
    // EncodeResult splices the members between the braces into the result's
    // meta, so the object must start and end with them (no whitespace around).
    if (!a.meta.empty() && (a.meta.front() != '{' || a.meta.back() != '}' || !JsonAccept(a.meta))) {
      return Status::InvalidArgument("chunk answer entry " + std::to_string(n) +
                                     ": meta is not a JSON object");
    }
    out.tasks.push_back(a);
  }
  if (pos != answer.size()) return Status::InvalidArgument("trailing bytes after chunk answer");
  return out;
}

std::string EncodeResult(const ResultMeta& m, std::string_view body, std::string_view data) {
  // The meta JSON: the engine's strings, then the body's members ("{}" or
  // empty adds none).
  std::string_view members = body.size() >= 2 ? body.substr(1, body.size() - 2) : "";
  if (members.find_first_not_of(" \t\r\n") == std::string_view::npos) members = {};
  size_t meta_size = 2 + (m.sandbox.empty() ? 0 : 14 + m.sandbox.size()) +
                     (m.request_id.empty() ? 0 : 17 + m.request_id.size()) + members.size() + 1;
  std::string out;
  out.reserve(kResultHeadBytes + meta_size + data.size());
  PutU32(out, static_cast<uint32_t>(m.seq & 0xffffffffu));
  PutU32(out, static_cast<uint32_t>(m.seq >> 32));
  PutU32(out, m.index);
  PutU32(out, static_cast<uint32_t>(m.status));
  PutF64(out, m.t_start);
  PutF64(out, m.t_setup);
  PutF64(out, m.t_done);
  PutF64(out, static_cast<double>(m.queued_ms) / 1000.0);
  PutF64(out, static_cast<double>(m.finished_ms) / 1000.0);
  PutU32(out, static_cast<uint32_t>(std::max(m.attempts, 0)));
  PutU32(out, m.cold ? 1u : 0u);
  size_t meta_len_at = out.size();
  PutU32(out, 0);  // meta length, patched below
  PutU32(out, static_cast<uint32_t>(data.size()));
  size_t meta_at = out.size();
  out += '{';
  const char* sep = "";
  if (!m.sandbox.empty()) {
    out += "\"sandbox\":\"";
    out += m.sandbox;
    out += '"';
    sep = ",";
  }
  if (!m.request_id.empty()) {
    out += sep;
    out += "\"request_id\":\"";
    out += m.request_id;
    out += '"';
    sep = ",";
  }
  if (!members.empty()) {
    out += sep;
    out += members;
  }
  out += '}';
  uint32_t meta_len = static_cast<uint32_t>(out.size() - meta_at);
  for (int i = 0; i < 4; ++i)
    out[meta_len_at + i] = static_cast<char>((meta_len >> (8 * i)) & 0xff);
  out.append(data);
  return out;
}

Result<ResultHead> DecodeResultHead(std::string_view result) {
  size_t pos = 0;
  uint32_t lo = 0, hi = 0, status = 0;
  ResultHead head;
  if (result.size() < kResultHeadBytes || !GetU32(result, &pos, &lo) ||
      !GetU32(result, &pos, &hi) || !GetU32(result, &pos, &head.index) ||
      !GetU32(result, &pos, &status)) {
    return Status::InvalidArgument("a stored result of " + std::to_string(result.size()) +
                                   " bytes is shorter than a result's head");
  }
  if (status > static_cast<uint32_t>(ResultStatus::kCancelled)) {
    return Status::InvalidArgument("a stored result has unknown status " + std::to_string(status));
  }
  head.seq = (uint64_t{hi} << 32) | lo;
  head.status = static_cast<ResultStatus>(status);
  return head;
}

}  // namespace gust::engine

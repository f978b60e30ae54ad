// The byte formats of map jobs (docs/MAP.md), shared by the job API and the
// scheduler. All integers are u32 little endian.
//   job body      JSON header line "\n", then per task: length + bytes
//   chunk         count, then per task: index + length + bytes   (to the worker)
//   chunk answer  count, then per task: meta length + meta JSON + data length + data
//   result        meta length + meta JSON + data length + data   (to the client)
//
// Failures: decoders return InvalidArgument naming what is malformed and
// where; nothing here throws or crashes on hostile input.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gust::engine {

struct JobBody {
  nlohmann::json header;
  std::vector<std::string> tasks;
};

// max_task_bytes: a larger task is TooLarge, naming its index and size.
Result<JobBody> ParseJobBody(std::string_view body, size_t max_task_bytes);

std::string EncodeChunk(const std::vector<uint32_t>& indexes,
                        const std::vector<std::string>& payloads);

struct TaskAnswer {
  uint32_t index = 0;
  nlohmann::json meta;
  std::string data;
};
Result<std::vector<TaskAnswer>> DecodeChunkAnswer(std::string_view answer);

std::string EncodeResult(const nlohmann::json& meta, std::string_view data);

}  // namespace gust::engine

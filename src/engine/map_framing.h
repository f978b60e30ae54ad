// The byte formats of map jobs (docs/MAP.md), shared by the job API and the
// scheduler. Integers are u32 and floats f64, little endian.
//   job body      JSON header line "\n", then per task: length + bytes
//   chunk         count, then per task: index + length + bytes   (to the worker)
//   chunk answer  count + exec_us (the worker's time on this answer's tasks,
//                 from the chunk's arrival or its previous part), then per
//                 task: index + status (0 ok, 1 error) + t_start + t_setup +
//                 t_done (f64 epoch s) + meta length + data length + meta
//                 (empty, or a JSON object: error_type, error_message) + data
//   result        u64 seq + index + status (0 ok, 1 error, 2 cancelled) +
//                 t_start + t_setup + t_done + t_queued + t_finished (f64
//                 epoch s, 0 = none) + attempts + flags (bit 0: cold) +
//                 meta length + data length + meta JSON + data   (to the client)
// Everything a client routes or times a result by is binary (a fixed 72-byte
// head), so a task costs neither side any JSON; a result's meta JSON holds
// the strings (sandbox, request_id, error_type, error_message): the engine's
// members followed by the worker's (spliced, not re-serialised: the worker's
// object is only validated).
//
// Failures: decoders return InvalidArgument naming what is malformed and
// where; nothing here throws or crashes on hostile input (chunk answers come
// from a sandbox, i.e. from user code).
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

// The implicit noexcept move is nlohmann::json's, whose assert_invariant() tidy
// reads as able to throw; it asserts only.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct JobBody {
  nlohmann::json header;
  std::vector<std::string> tasks;
};

// max_task_bytes: a larger task is TooLarge, naming its index and size.
Result<JobBody> ParseJobBody(std::string_view body, size_t max_task_bytes);

std::string EncodeChunk(const std::vector<uint32_t>& indexes,
                        const std::vector<std::string>& payloads);

// Views into the answer being decoded (valid while it lives).
struct TaskAnswer {
  uint32_t index = 0;
  bool ok = false;
  double t_start = 0, t_setup = 0, t_done = 0;  // the worker's clock, epoch s
  std::string_view meta;                        // empty or a JSON object
  std::string_view data;
};
struct ChunkAnswer {
  uint32_t exec_us = 0;
  std::vector<TaskAnswer> tasks;
};
Result<ChunkAnswer> DecodeChunkAnswer(std::string_view answer);

enum class ResultStatus : uint32_t { kOk = 0, kError = 1, kCancelled = 2 };

// The engine's part of a result's meta.
struct ResultMeta {
  uint64_t seq = 0;
  uint32_t index = 0;
  ResultStatus status = ResultStatus::kOk;
  int attempts = 0;
  bool cold = false;
  std::string_view sandbox;                     // [A-Za-z0-9-] ids only (not escaped)
  std::string_view request_id;                  // same
  double t_start = 0, t_setup = 0, t_done = 0;  // the worker's, 0 = none
  int64_t queued_ms = 0;                        // epoch ms
  int64_t finished_ms = 0;
};
// Size of a result's fixed head (seq .. data length).
inline constexpr size_t kResultHeadBytes = 72;
// body: empty or a JSON object (the worker's meta, or the engine's error
// fields) whose members follow the engine's.
std::string EncodeResult(const ResultMeta& meta, std::string_view body, std::string_view data);

// What a node taking a job over reads back from a stored result: its seq,
// task index and status. InvalidArgument when it is shorter than a head or
// its status is unknown.
struct ResultHead {
  uint64_t seq = 0;
  uint32_t index = 0;
  ResultStatus status = ResultStatus::kOk;
};
Result<ResultHead> DecodeResultHead(std::string_view result);

}  // namespace gust::engine

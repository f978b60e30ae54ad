// Fuzz target: a map worker's chunk answer (docs/MAP.md) as the engine takes
// it from a sandbox — user code writes these bytes — decoded by
// engine::DecodeChunkAnswer, and every task answer re-encoded as the result a
// client reads (EncodeResult splices the worker's meta into the engine's).
// Invariant: what reaches the client is well framed and its meta is a JSON
// object, whatever the worker sent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/map_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view answer(reinterpret_cast<const char*>(data), size);
  auto decoded = gust::engine::DecodeChunkAnswer(answer);
  if (!decoded.ok()) return 0;
  uint64_t seq = 0;
  for (const gust::engine::TaskAnswer& a : decoded->tasks) {
    gust::engine::ResultMeta meta;
    meta.seq = ++seq;
    meta.index = a.index;
    meta.status = a.ok ? gust::engine::ResultStatus::kOk : gust::engine::ResultStatus::kError;
    meta.attempts = 1;
    meta.sandbox = "sbx-0123456789abcdef";
    meta.request_id = "00000000-0000-4000-8000-000000000000";
    meta.t_start = a.t_start;
    meta.t_setup = a.t_setup;
    meta.t_done = a.t_done;
    std::string result = gust::engine::EncodeResult(meta, a.meta, a.data);
    // head: ... meta length (u32 at 64) + data length (u32 at 68), then meta + data
    if (result.size() < gust::engine::kResultHeadBytes) std::abort();
    uint32_t meta_len, data_len;
    std::memcpy(&meta_len, result.data() + 64, 4);
    std::memcpy(&data_len, result.data() + 68, 4);
    if (result.size() != gust::engine::kResultHeadBytes + meta_len + data_len) std::abort();
    auto doc = nlohmann::json::parse(result.substr(gust::engine::kResultHeadBytes, meta_len),
                                     nullptr, false);
    if (!doc.is_object() || !doc.contains("sandbox")) std::abort();
  }
  return 0;
}

// Fuzz target: POST /v1/jobs and POST /v1/jobs/{id}/cancel bodies (docs/MAP.md)
// as JobsApi reads them on the worker pool: the framed job body
// (engine::ParseJobBody: a JSON header line, then length-prefixed tasks), the
// header's fields (ParseJobHeader), and the same bytes as a cancel body.
// An exception here would be std::terminate on the worker pool.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "api/body_parsers.h"
#include "engine/invoker.h"  // kMaxSyncPayloadBytes
#include "engine/map_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  static const gust::EngineConfig config = [] {
    gust::EngineConfig c;
    c.max_memory_mb = 16384;  // what the engine fills in at start (0 refuses every size)
    return c;
  }();

  auto body = gust::engine::ParseJobBody(text, gust::engine::kMaxSyncPayloadBytes);
  if (body.ok()) {
    gust::api::JobHeader header;
    gust::api::ApiError e = gust::api::ParseJobHeader(body->header, config, &header);
    gust::api::ErrorResponse(e.status ? e : gust::api::ApiError{400, "Fuzz", header.code});
  } else {
    gust::api::ErrorResponse(gust::api::FromStatus(body.status()));
  }

  std::vector<uint32_t> tasks;
  gust::api::ApiError e = gust::api::ParseCancelBody(text, &tasks);
  if (e.status) gust::api::ErrorResponse(e);
  return 0;
}

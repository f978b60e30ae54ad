// Fuzz target: the bodies of the async-invocation API (src/api/events_api.h):
// PUT/POST .../event-invoke-config (ParseEventInvokeConfigBody) and POST
// /v1/functions/{name}/dead-letters/redrive (ParseRedriveBody), answered in
// Lambda's error shape when refused.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "api/body_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  gust::api::EventInvokeConfigBody config;
  if (auto e = gust::api::ParseEventInvokeConfigBody(body, &config); e.status) {
    gust::api::ErrorResponse(e);
  } else {
    nlohmann::json doc = nlohmann::json::object();
    if (config.max_retry_attempts) doc["MaximumRetryAttempts"] = *config.max_retry_attempts;
    if (config.max_event_age_s) doc["MaximumEventAgeInSeconds"] = *config.max_event_age_s;
    if (config.on_success) doc["OnSuccess"] = *config.on_success;
    if (config.on_failure) doc["OnFailure"] = *config.on_failure;
    gust::api::JsonResponse(200, doc);
  }
  std::vector<std::string> ids;
  if (auto e = gust::api::ParseRedriveBody(body, &ids); e.status) gust::api::ErrorResponse(e);
  return 0;
}

// Fuzz target: the bodies of PUT /v1/schedules/{name} and PUT
// /v1/schedule-groups/{group} (src/api/schedules_api.h) as SchedulesApi reads
// them before it looks the function up: ParseJsonBody, then ParseScheduleDoc
// on the document (and on each of a group's "schedules"), which parses the
// expression and loads the time zone. Refusals are answered in Lambda's shape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/body_parsers.h"
#include "api/request_fields.h"

namespace {

void Check(const nlohmann::json& doc, const std::string& name) {
  gust::Schedule s;
  gust::api::ApiError e = gust::api::ParseScheduleDoc(doc, name, "", 1764000000000, &s);
  if (e.status) gust::api::ErrorResponse(e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto body = gust::api::ParseJsonBody(text);
  if (!body.ok()) {
    gust::api::ErrorResponse(gust::api::BadJsonError(body.status().message()));
    return 0;
  }
  Check(*body, "fuzz-schedule");
  auto list = body->find("schedules");
  if (list != body->end() && list->is_array()) {
    for (const nlohmann::json& doc : *list) {
      if (doc.is_object() && doc.contains("name") && doc["name"].is_string()) {
        Check(doc, doc["name"].get<std::string>());
      }
    }
  }
  return 0;
}

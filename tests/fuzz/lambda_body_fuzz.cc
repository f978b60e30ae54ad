// Fuzz target: the body of a Lambda management call (CreateFunction,
// UpdateFunctionConfiguration, UpdateFunctionCode, PublishVersion,
// CreateAlias/UpdateAlias, PutFunctionConcurrency) read the way the handlers
// read it — ParseJsonBody, RequestFields, ApplyConfigFields, the Check*
// validators — and answered the way they answer (FunctionConfiguration or
// Lambda's error shape, serialised). Also the function reference of a
// FunctionName or path and the base64 of Code.ZipFile / X-Amz-Client-Context.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/body_parsers.h"
#include "api/lambda_shapes.h"
#include "api/request_fields.h"
#include "common/base64.h"

namespace {

using namespace gust::api;

void Answer(const ApiError& e) {
  if (e.status) ErrorResponse(e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  // The whole input as a FunctionName / path parameter.
  auto ref = ParseFunctionRef(text);
  if (!ref.ok()) {
    Answer(FromStatus(ref.status()));
  } else {
    Answer(CheckFunctionName(ref->name));
    Answer(CheckAliasName(ref->qualifier));
  }
  if (auto decoded = gust::Base64Decode(text); decoded.ok()) {
    (void)nlohmann::json::accept(*decoded);
  } else {
    Answer({400, "InvalidParameterValueException", decoded.status().message()});
  }

  auto body = ParseJsonBody(text);
  if (!body.ok()) {
    Answer(BadJsonError(body.status().message()));
    return 0;
  }
  RequestFields f(*body);
  if (auto name = f.String("FunctionName")) {
    auto r = ParseFunctionRef(*name);
    Answer(r.ok() ? CheckFunctionName(r->name) : FromStatus(r.status()));
  }
  gust::FunctionConfig config;
  config.name = "fuzz";
  config.handler = "app.handler";
  static const gust::EngineConfig engine = [] {
    gust::EngineConfig c;
    c.max_memory_mb = 16384;  // what the engine fills in at start (0 refuses every size)
    return c;
  }();
  ApiError e = ApplyConfigFields(f, engine, config);
  Answer(e);
  (void)f.String("PackageType");
  (void)f.Bool("Publish");
  (void)f.Bool("DryRun");
  (void)f.String("RevisionId");
  if (auto zip = body->find("ZipFile"); zip != body->end() && zip->is_string()) {
    (void)gust::Base64Decode(zip->get<std::string>());
  }
  gust::AliasConfig alias;
  alias.function = "fuzz";
  alias.name = f.String("Name").value_or("");
  alias.version = f.String("FunctionVersion").value_or("");
  alias.description = f.String("Description").value_or("");
  Answer(CheckAliasName(alias.name));
  if (auto reserved = f.Int("ReservedConcurrentExecutions")) {
    Answer(CheckRange(static_cast<int>(std::clamp<int64_t>(*reserved, -1, 1 << 30)), 0, 1000,
                      "reservedConcurrentExecutions"));
  }
  Answer(f.error());
  if (!e.status) JsonResponse(200, FunctionConfigurationJson(config));
  JsonResponse(200, AliasJson(alias));
  return 0;
}

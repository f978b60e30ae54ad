// Fuzz target: the gateway's decoding of a function's answer to a web
// request (src/api/http_event.h): any bytes a function returns, read as the
// WSGI adapter's raw answer and as an API Gateway v2.0 response document
// ({statusCode, headers, cookies, body, isBase64Encoded} or a bare value).
// The function is user code, so this is untrusted input on the engine thread.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/http_event.h"
#include "http/server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string payload(reinterpret_cast<const char*>(data), size);
  // Then as the server finishes every response before writing it.
  if (auto r = gust::api::DecodeEventV2Response(payload); r.ok()) {
    gust::http::PrepareResponse(*r, 11, true);
  }
  if (auto r = gust::api::DecodeWsgiResponse(payload); r.ok()) {
    gust::http::PrepareResponse(*r, 11, true);
  }
  return 0;
}

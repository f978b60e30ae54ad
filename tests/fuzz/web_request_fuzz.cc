// Fuzz target: the gateway's encoding of a web request (src/api/http_event.h):
// raw client bytes parsed as http::Server parses them; a request the gateway
// accepts (/web/<app>/... or Host <app>.localhost) is split into its target
// and encoded both ways a function can receive it: the API Gateway v2.0 JSON
// event and the raw-bytes WSGI event.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/http_event.h"
#include "fuzz_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t piece = 1 + size * 7 % 64;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto request = gust::fuzz::ParseRequest(input, piece);
  if (!request || !gust::api::IsWebRequest(*request)) return 0;

  gust::api::AppTarget target = gust::api::ParseTarget(*request);
  gust::api::RequestInfo info{"127.0.0.1", "00000000-0000-4000-8000-000000000000", 1764000000000};
  std::string v2 = gust::api::EncodeEventV2(*request, target, info);
  if (!nlohmann::json::accept(v2)) std::abort();  // a function must be able to read it
  const size_t body_size = request->body().size();
  std::string wsgi = gust::api::EncodeWsgiRequest(*request, target, info);
  // magic | u32 environ length | environ JSON | body
  const auto magic = gust::api::kWsgiEventMagic;
  if (wsgi.compare(0, magic.size(), magic) != 0 || wsgi.size() < magic.size() + 4) std::abort();
  uint32_t n;
  std::memcpy(&n, wsgi.data() + magic.size(), 4);
  if (wsgi.size() != magic.size() + 4 + n + body_size) std::abort();
  if (!nlohmann::json::accept(std::string_view(wsgi).substr(magic.size() + 4, n))) std::abort();
  return 0;
}

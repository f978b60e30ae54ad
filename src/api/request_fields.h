// RequestFields: typed, optional fields of a JSON request body. The first
// wrong-typed field is remembered as an ApiError (400
// InvalidRequestContentException naming the field) so a handler reads all its
// fields and then checks error() once.
//
// Thread-safety: a value used by one handler.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "api/lambda_shapes.h"
#include "common/json_read.h"
#include "http/server.h"

namespace gust::api {

// Parses a request body as a JSON object; an empty body is {}.
Result<nlohmann::json> ParseJsonBody(const std::string& body);
// The 400 InvalidRequestContentException for a body that is not JSON.
ApiError BadJsonError(const std::string& detail);

class RequestFields {
 public:
  explicit RequestFields(const nlohmann::json& body) : body_(body) {}
  std::optional<std::string> String(const char* key);
  std::optional<int64_t> Int(const char* key);
  std::optional<bool> Bool(const char* key);
  // {"Variables": {"K": "V"}} under key.
  std::optional<std::map<std::string, std::string>> Variables(const char* key);
  // A list of strings (null: absent).
  std::optional<std::vector<std::string>> StringList(const char* key);
  // An int nested one level down: {"EphemeralStorage": {"Size": 512}}.
  std::optional<int64_t> NestedInt(const char* key, const char* inner);
  bool Has(const char* key) const { return body_.contains(key); }
  const ApiError& error() const { return error_; }
  bool ok() const { return error_.status == 0; }

 private:
  template <typename T>
  std::optional<T> Read(const char* key,
                        JsonGot (*get)(const nlohmann::json&, std::string_view, T*),
                        const char* type);
  void TypeError(const char* key, const char* type);
  const nlohmann::json& body_;
  ApiError error_{0, "", ""};
};

}  // namespace gust::api

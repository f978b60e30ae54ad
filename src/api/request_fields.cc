#include "api/request_fields.h"

namespace gust::api {

Result<nlohmann::json> ParseJsonBody(const std::string& body) {
  if (body.empty()) return nlohmann::json::object();
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) return Status::InvalidArgument("the body is not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument("the body must be a JSON object");
  return doc;
}

ApiError BadJsonError(const std::string& detail) {
  return {400, "InvalidRequestContentException",
          "Could not parse request body into json: " + detail};
}

void RequestFields::TypeError(const char* key, const char* type) {
  if (error_.status != 0) return;
  error_ = BadJsonError(std::string("field '") + key + "' must be " + type);
}

std::optional<std::string> RequestFields::String(const char* key) {
  auto it = body_.find(key);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    TypeError(key, "a string");
    return std::nullopt;
  }
  return it->get<std::string>();
}

std::optional<int64_t> RequestFields::Int(const char* key) {
  auto it = body_.find(key);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) {
    TypeError(key, "an integer");
    return std::nullopt;
  }
  return it->get<int64_t>();
}

std::optional<bool> RequestFields::Bool(const char* key) {
  auto it = body_.find(key);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) {
    TypeError(key, "a boolean");
    return std::nullopt;
  }
  return it->get<bool>();
}

std::optional<std::map<std::string, std::string>> RequestFields::Variables(const char* key) {
  auto it = body_.find(key);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) {
    TypeError(key, "an object");
    return std::nullopt;
  }
  std::map<std::string, std::string> vars;
  auto v = it->find("Variables");
  if (v == it->end() || v->is_null()) return vars;
  if (!v->is_object()) {
    TypeError("Environment.Variables", "an object of strings");
    return std::nullopt;
  }
  for (auto& [k, value] : v->items()) {
    if (!value.is_string()) {
      TypeError("Environment.Variables", "an object of strings");
      return std::nullopt;
    }
    vars[k] = value.get<std::string>();
  }
  return vars;
}

std::optional<int64_t> RequestFields::NestedInt(const char* key, const char* inner) {
  auto it = body_.find(key);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) {
    TypeError(key, "an object");
    return std::nullopt;
  }
  auto v = it->find(inner);
  if (v == it->end() || v->is_null()) return std::nullopt;
  if (!v->is_number_integer()) {
    TypeError(inner, "an integer");
    return std::nullopt;
  }
  return v->get<int64_t>();
}

}  // namespace gust::api

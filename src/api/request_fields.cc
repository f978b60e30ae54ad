#include "api/request_fields.h"

namespace gust::api {

Result<nlohmann::json> ParseJsonBody(const std::string& body) {
  if (body.empty()) return nlohmann::json::object();
  auto doc = JsonParse(body);
  if (doc.is_discarded())
    return Status::InvalidArgument("the body is not valid JSON (or nests deeper than " +
                                   std::to_string(kMaxJsonDepth) + " levels)");
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

// One typed read: the value, nothing when absent, or a type error remembered.
template <typename T>
std::optional<T> RequestFields::Read(const char* key,
                                     JsonGot (*get)(const nlohmann::json&, std::string_view, T*),
                                     const char* type) {
  T value{};
  switch (get(body_, key, &value)) {
    case JsonGot::kOk:
      return value;
    case JsonGot::kWrongType:
      TypeError(key, type);
      return std::nullopt;
    case JsonGot::kAbsent:
      break;
  }
  return std::nullopt;
}

std::optional<std::string> RequestFields::String(const char* key) {
  return Read<std::string>(key, JsonGetString, "a string");
}

std::optional<int64_t> RequestFields::Int(const char* key) {
  return Read<int64_t>(key, JsonGetInt, "an integer");
}

std::optional<bool> RequestFields::Bool(const char* key) {
  return Read<bool>(key, JsonGetBool, "a boolean");
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

std::optional<std::vector<std::string>> RequestFields::StringList(const char* key) {
  auto it = body_.find(key);
  if (it == body_.end() || it->is_null()) return std::nullopt;
  std::vector<std::string> out;
  bool ok = it->is_array();
  for (const auto& item : ok ? *it : nlohmann::json::array()) {
    if (!item.is_string()) ok = false;
    if (ok) out.push_back(item.get<std::string>());
  }
  if (!ok) {
    TypeError(key, "a list of strings");
    return std::nullopt;
  }
  return out;
}

std::optional<int64_t> RequestFields::NestedInt(const char* key, const char* inner) {
  const nlohmann::json* outer = JsonFind(body_, key);
  if (outer == nullptr || outer->is_null()) return std::nullopt;
  if (!outer->is_object()) {
    TypeError(key, "an object");
    return std::nullopt;
  }
  RequestFields fields(*outer);
  std::optional<int64_t> value = fields.Int(inner);
  if (!fields.ok() && ok()) error_ = fields.error();
  return value;
}

}  // namespace gust::api

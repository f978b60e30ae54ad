#include "common/json_read.h"

#include <limits>

namespace gust {

using nlohmann::json;

namespace {

// Whether text nests arrays/objects deeper than max_depth (brackets inside
// strings do not count). A linear scan, cheaper than the parse it guards.
bool TooDeep(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

json JsonParse(std::string_view text, int max_depth) {
  if (text.find('\0') != std::string_view::npos || TooDeep(text, max_depth)) {
    return json(json::value_t::discarded);
  }
  return json::parse(text, nullptr, false);
}

bool JsonAccept(std::string_view text) {
  return text.find('\0') == std::string_view::npos && json::accept(text);
}

const json* JsonFind(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  return it == obj.end() ? nullptr : &*it;
}

namespace {

// The member, or nullptr for an absent or null one (both mean "not given").
const json* Given(const json& obj, std::string_view key) {
  const json* v = JsonFind(obj, key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

}  // namespace

JsonGot JsonGetString(const json& obj, std::string_view key, std::string* out) {
  const json* v = Given(obj, key);
  if (v == nullptr) return JsonGot::kAbsent;
  if (!v->is_string()) return JsonGot::kWrongType;
  *out = v->get_ref<const std::string&>();
  return JsonGot::kOk;
}

JsonGot JsonGetInt(const json& obj, std::string_view key, int64_t* out) {
  const json* v = Given(obj, key);
  if (v == nullptr) return JsonGot::kAbsent;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return JsonGot::kWrongType;
    *out = static_cast<int64_t>(u);
    return JsonGot::kOk;
  }
  if (!v->is_number_integer()) return JsonGot::kWrongType;
  *out = v->get<int64_t>();
  return JsonGot::kOk;
}

JsonGot JsonGetBool(const json& obj, std::string_view key, bool* out) {
  const json* v = Given(obj, key);
  if (v == nullptr) return JsonGot::kAbsent;
  if (!v->is_boolean()) return JsonGot::kWrongType;
  *out = v->get<bool>();
  return JsonGot::kOk;
}

JsonGot JsonGetNumber(const json& obj, std::string_view key, double* out) {
  const json* v = Given(obj, key);
  if (v == nullptr) return JsonGot::kAbsent;
  if (!v->is_number()) return JsonGot::kWrongType;
  *out = v->get<double>();
  return JsonGot::kOk;
}

std::string JsonStringOr(const json& obj, std::string_view key, std::string fallback) {
  JsonGetString(obj, key, &fallback);
  return fallback;
}

int64_t JsonIntOr(const json& obj, std::string_view key, int64_t fallback) {
  JsonGetInt(obj, key, &fallback);
  return fallback;
}

bool JsonBoolOr(const json& obj, std::string_view key, bool fallback) {
  JsonGetBool(obj, key, &fallback);
  return fallback;
}

std::string JsonDump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string JsonText(const json& value) {
  return value.is_string() ? value.get<std::string>() : JsonDump(value);
}

}  // namespace gust

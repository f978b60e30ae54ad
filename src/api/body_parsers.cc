#include "api/body_parsers.h"

#include <algorithm>
#include <charconv>

#include "api/request_fields.h"
#include "common/json_read.h"
#include "schedule/expression.h"
#include "schedule/timezone.h"

#ifndef GUST_RUNTIME_PYTHON
#error "GUST_RUNTIME_PYTHON (major.minor of the runtime's Python) must be defined by CMake"
#endif

namespace gust::api {

namespace {

using json = nlohmann::json;
using Json = nlohmann::json;

ApiError Ok() { return {0, "", ""}; }

// The error type (x-amzn-ErrorType) of a job whose client's Python gust cannot
// run a map in (too old): the client raises VersionMismatchError.
constexpr char kPythonMismatchType[] = "PythonVersionMismatchException";
// The oldest Python a map runs in (the client library's and the runtime's floor).
constexpr int kMinPythonMinor = 9;
constexpr int kMaxMapConcurrency = 1000;

// "3.11.2 (main, ...)" or "3.11" -> "3.11".
std::string MajorMinor(const std::string& version) {
  size_t first = version.find('.');
  if (first == std::string::npos) return version;
  size_t second = version.find_first_not_of("0123456789", first + 1);
  return version.substr(0, second);
}

// Reads an optional integer header field within [lo, hi]; error names it.
ApiError IntField(const json& h, const char* key, int lo, int hi, int* out) {
  int64_t v = 0;
  JsonGot got = JsonGetInt(h, key, &v);
  if (got == JsonGot::kAbsent) return ApiError{0, "", ""};
  if (got == JsonGot::kWrongType || v < lo || v > hi) {
    return BadField(std::string("job header field ") + key + " must be an integer from " +
                    std::to_string(lo) + " to " + std::to_string(hi) + ", not " +
                    JsonDump(*JsonFind(h, key)));
  }
  *out = static_cast<int>(v);
  return ApiError{0, "", ""};
}

// IntField up to an engine ceiling set by `gust up --<flag>`; a value above
// it gets a message naming the ceiling, not a bare range.
ApiError CeilingField(const json& h, const char* key, int lo, int ceiling, const char* flag,
                      const char* unit, int* out) {
  int64_t v = 0;
  if (JsonGetInt(h, key, &v) == JsonGot::kOk && v > ceiling) {
    return BadField(AboveCeiling(std::string("job header field ") + key, v, flag, ceiling, unit));
  }
  return IntField(h, key, lo, ceiling, out);
}

constexpr size_t kMaxNameLength = 256;
constexpr size_t kMaxPayloadBytes = 64 * 1024;

ApiError CheckScheduleName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  if (ok) return {0, "", ""};
  return ValidationError(name, "name",
                         "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ and "
                         "have length between 1 and 256");
}

// The header's "python": {"executable", "prefix", "base_prefix", "version"}.
// A client from before environments sent "3.11" there: told to upgrade.
ApiError ParseClientPython(const json& h, ClientPython* out) {
  const json* python = JsonFind(h, "python");
  if (python == nullptr || !python->is_object()) {
    return BadField(
        "job header field python must name the client's Python environment as {\"executable\", "
        "\"prefix\", \"base_prefix\", \"version\"} (sys.executable, sys.prefix, "
        "sys.base_prefix, the version), not " +
        (python ? JsonDump(*python) : std::string("nothing")) +
        ": a gust client older than this engine sent it; use the client of the engine's gust "
        "version");
  }
  struct Member {
    const char* key;
    std::string* value;
  };
  for (const Member& m : {Member{"executable", &out->executable}, Member{"prefix", &out->prefix},
                          Member{"base_prefix", &out->base_prefix}}) {
    std::string field = std::string("job header field python.") + m.key;
    if (JsonGetString(*python, m.key, m.value) != JsonGot::kOk || m.value->empty()) {
      return BadField(field + " (an absolute path) is required");
    }
    if (ApiError e = CheckPythonPath(*m.value, field); e.status) return e;
  }
  if (JsonGetString(*python, "version", &out->version) != JsonGot::kOk) {
    return BadField("job header field python.version (a string) is required");
  }
  // "3.9.18 (main, ...)" or "3.12": major and minor are what counts.
  int major = 0, minor = 0;
  const char* end = out->version.data() + out->version.size();
  auto [after_major, e1] = std::from_chars(out->version.data(), end, major);
  bool parsed = e1 == std::errc() && after_major != end && *after_major == '.';
  if (parsed) parsed = std::from_chars(after_major + 1, end, minor).ec == std::errc();
  if (!parsed) {
    return BadField("job header field python.version must be \"major.minor[.micro]\", not " +
                    JsonDump(json(out->version.substr(0, 64))));
  }
  if (major != 3 || minor < kMinPythonMinor) {
    return {400, kPythonMismatchType,
            "client Python " + MajorMinor(out->version) + " (" + out->executable +
                ") is not supported: maps run in CPython 3." + std::to_string(kMinPythonMinor) +
                " or later"};
  }
  return ApiError{0, "", ""};
}

}  // namespace

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

ApiError BadField(const std::string& message) {
  return {400, "InvalidParameterValueException", message};
}

ApiError ApplyConfigFields(RequestFields& f, const EngineConfig& engine, FunctionConfig& c) {
  if (auto v = f.String("Runtime")) c.runtime = *v;
  if (auto v = f.String("Handler")) c.handler = *v;
  if (auto v = f.String("Role")) c.role = *v;
  if (auto v = f.String("Description")) c.description = *v;
  if (auto v = f.Int("MemorySize"))
    c.memory_mb = static_cast<int>(std::clamp<int64_t>(*v, -1, 1 << 30));
  if (auto v = f.Int("Timeout"))
    c.timeout_s = static_cast<int>(std::clamp<int64_t>(*v, -1, 1 << 30));
  if (auto v = f.NestedInt("EphemeralStorage", "Size"))
    c.ephemeral_storage_mb = static_cast<int>(std::clamp<int64_t>(*v, -1, 1 << 30));
  if (auto v = f.Variables("Environment")) c.env = *v;
  if (auto v = f.Bool("Network")) c.network = *v;
  if (auto v = f.Int("KeepAliveSeconds"))
    c.keep_alive_s = static_cast<int>(std::clamp<int64_t>(*v, -1, 86400 * 7));
  if (auto v = f.String(kPythonField)) c.python = *v;
  if (auto v = f.StringList(kBucketsField)) {
    BucketGrants grants;
    if (ApiError e = CheckBucketGrants(*v, kBucketsField, &grants); e.status) return e;
    c.buckets = FormatBucketGrants(grants);
  }
  if (!f.ok()) return f.error();
  if (auto e = CheckPythonPath(c.python, kPythonField); e.status) return e;
  if (auto e = CheckRuntime(c.runtime); e.status) return e;
  if (auto e = CheckHandler(c.handler); e.status) return e;
  if (auto e = CheckMemory(c.memory_mb, engine.max_memory_mb); e.status) return e;
  if (auto e = CheckTimeout(c.timeout_s, engine.max_timeout_s); e.status) return e;
  if (auto e = CheckEphemeralStorage(c.ephemeral_storage_mb); e.status) return e;
  if (auto e = CheckEnvironment(c.env); e.status) return e;
  return Ok();
}

ApiError CheckBucketGrants(const std::vector<std::string>& texts, const std::string& field,
                           BucketGrants* out) {
  auto grants = ParseBucketGrants(texts);
  if (!grants.ok()) return BadField(field + ": " + grants.status().message());
  *out = std::move(*grants);
  return ApiError{0, "", ""};
}

ApiError ParseJobHeader(const json& h, const EngineConfig& config, JobHeader* out) {
  // Every member is type-checked before it is read: the header is the client's.
  if (JsonGetString(h, "code", &out->code) != JsonGot::kOk || !IsSha256Hex(out->code)) {
    return BadField(
        "job header field code must be the sha256 (64 hex digits) of an "
        "uploaded code zip");
  }
  if (ApiError e = ParseClientPython(h, &out->python); e.status) return e;
  out->ttl_s = config.job_ttl_s;
  // Up to 1000 sandboxes; memory bounds it while the job runs (the scheduler
  // adds none while the host is below its memory reserve: map_scaler.h), not
  // memory size x concurrency, which would cap a map of sleeping tasks at
  // RAM / 256 MB although each sandbox uses a few MB.
  out->concurrency = std::min(kMaxMapConcurrency, config.max_sandboxes);
  // Memory and timeout up to the engine's ceilings, named when passed; a
  // timeout of 0 is none of the task's own (the ceiling still bounds it).
  for (const ApiError& e : {CeilingField(h, "memory", kMinMemoryMb, config.max_memory_mb,
                                         "max-memory", "MB", &out->memory),
                            CeilingField(h, "timeout", 0, config.max_timeout_s, "max-timeout",
                                         "seconds", &out->timeout),
                            IntField(h, "retries", 0, 10, &out->retries),
                            IntField(h, "chunksize", 1, 1000, &out->chunksize),
                            IntField(h, "concurrency", 1, kMaxMapConcurrency, &out->concurrency),
                            IntField(h, "ttl_s", 1, 7 * 24 * 3600, &out->ttl_s)}) {
    if (e.status) return e;
  }
  if (JsonGot got = JsonGetNumber(h, "straggler_factor", &out->straggler_factor);
      got == JsonGot::kWrongType || (got == JsonGot::kOk && !(out->straggler_factor >= 1.0))) {
    return BadField(
        "job header field straggler_factor must be a number >= 1 (a task "
        "slower than k x the median gets a backup copy), not " +
        JsonDump(*JsonFind(h, "straggler_factor")));
  }
  if (JsonGetBool(h, "network", &out->network) == JsonGot::kWrongType) {
    return BadField("job header field network must be a boolean");
  }
  if (const json* buckets = JsonFind(h, kJobBucketsField); buckets && !buckets->is_null()) {
    std::vector<std::string> texts;
    bool strings = buckets->is_array();
    for (const json& b : strings ? *buckets : json::array()) {
      if (!b.is_string()) strings = false;
      if (strings) texts.push_back(b.get<std::string>());
    }
    if (!strings) {
      return BadField(std::string("job header field ") + kJobBucketsField +
                      " must be a list of \"NAME\" or \"NAME:ro\" strings");
    }
    if (ApiError e = CheckBucketGrants(texts, std::string("job header field ") + kJobBucketsField,
                                       &out->buckets);
        e.status) {
      return e;
    }
  }
  return ApiError{0, "", ""};
}

ApiError ParseCancelBody(const std::string& body, std::vector<uint32_t>* tasks) {
  if (body.empty()) return ApiError{0, "", ""};
  json doc = JsonParse(body);
  auto list = doc.is_object() ? doc.find("tasks") : doc.end();
  bool ok = doc.is_object() && (list == doc.end() || list->is_array());
  if (ok && list != doc.end()) {
    for (const json& i : *list) {
      if (!i.is_number_unsigned() || i.get<uint64_t>() > UINT32_MAX) ok = false;
      if (ok) tasks->push_back(i.get<uint32_t>());
    }
  }
  if (!ok) return BadField("cancel body must be {\"tasks\": [task indexes]} or empty for all");
  return ApiError{0, "", ""};
}

const char* RuntimePythonVersion() { return GUST_RUNTIME_PYTHON; }

ApiError ParseEventInvokeConfigBody(const std::string& text, EventInvokeConfigBody* out) {
  auto body = ParseJsonBody(text);
  if (!body.ok()) return BadJsonError(body.status().message());
  RequestFields f(*body);
  out->max_retry_attempts = f.Int("MaximumRetryAttempts");
  out->max_event_age_s = f.Int("MaximumEventAgeInSeconds");
  if (body->contains("DestinationConfig")) {
    const Json& d = (*body)["DestinationConfig"];
    if (!d.is_object()) return BadJsonError("field 'DestinationConfig' must be an object");
    for (const char* key : {"OnSuccess", "OnFailure"}) {
      if (!d.contains(key) || d[key].is_null()) continue;
      if (!d[key].is_object()) {
        return BadJsonError(std::string("field 'DestinationConfig.") + key + "' must be an object");
      }
      RequestFields inner(d[key]);
      std::string dest = inner.String("Destination").value_or("");
      if (!inner.ok()) return inner.error();
      (std::string(key) == "OnSuccess" ? out->on_success : out->on_failure) = dest;
    }
  }
  if (!f.ok()) return f.error();
  if (const auto& retries = out->max_retry_attempts) {
    ApiError e = CheckRange(static_cast<int>(std::clamp<int64_t>(*retries, -1, 1000)), 0, 2,
                            "maximumRetryAttempts");
    if (e.status) return e;
  }
  if (const auto& age = out->max_event_age_s) {
    ApiError e = CheckRange(static_cast<int>(std::clamp<int64_t>(*age, -1, 1'000'000)), 60, 21600,
                            "maximumEventAgeInSeconds");
    if (e.status) return e;
  }
  return Ok();
}

ApiError ParseRedriveBody(const std::string& text, std::vector<std::string>* ids) {
  auto body = ParseJsonBody(text);
  if (!body.ok()) return BadJsonError(body.status().message());
  if (body->contains("request_ids")) {
    const Json& list = (*body)["request_ids"];
    bool ok = list.is_array();
    for (const Json& id : ok ? list : Json::array()) {
      if (!id.is_string()) ok = false;
      if (ok) ids->push_back(id.get<std::string>());
    }
    if (!ok) return BadJsonError("field 'request_ids' must be a list of strings");
  }
  return Ok();
}

ApiError ParseScheduleDoc(const Json& doc, const std::string& name, const std::string& group,
                          int64_t now_ms, Schedule* out) {
  if (ApiError e = CheckScheduleName(name); e.status) return e;
  RequestFields f(doc);
  auto function = f.String("function");
  auto qualifier = f.String("qualifier");
  auto expression = f.String("expression");
  auto enabled = f.Bool("enabled");
  auto kind = f.String("kind");
  auto doc_group = f.String("group");
  auto timezone = f.String("timezone");
  if (!f.ok()) return f.error();
  if (!function || function->empty()) {
    return {400, "InvalidParameterValueException", "schedule " + name + ": 'function' is required"};
  }
  if (!expression) {
    return {400, "InvalidParameterValueException",
            "schedule " + name +
                ": 'expression' is required, e.g. rate(5 minutes) or "
                "cron(0 12 * * ? *)"};
  }
  auto parsed = schedule::ScheduleExpression::Parse(*expression);
  if (!parsed.ok()) {
    return {400, "InvalidParameterValueException",
            "schedule " + name + ": " + parsed.status().message()};
  }
  if (timezone && !timezone->empty()) {
    auto tz = schedule::TimeZone::Load(*timezone);
    if (!tz.ok()) {
      return {400, "InvalidParameterValueException",
              "schedule " + name + ": " + tz.status().message()};
    }
  }
  std::string k = kind.value_or("invoke");
  if (k != "invoke" && k != "keep_warm") {
    return {400, "InvalidParameterValueException",
            "schedule " + name + ": kind '" + k + "' is not one of invoke, keep_warm"};
  }
  std::string payload;
  if (auto it = doc.find("payload"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) {
      return {400, "InvalidParameterValueException",
              "schedule " + name +
                  ": 'payload' must be a JSON object (its keys are added to the "
                  "Scheduled Event)"};
    }
    payload = it->dump();
    if (payload.size() > kMaxPayloadBytes) {
      return {400, "InvalidParameterValueException",
              "schedule " + name + ": 'payload' is over 64 KB"};
    }
  }
  out->name = name;
  out->group = doc_group.value_or(group);
  out->function = *function;
  out->qualifier = qualifier.value_or("");
  out->expression = *expression;
  out->timezone = timezone.value_or("");
  out->kind = k;
  out->enabled = enabled.value_or(true);
  out->payload = payload;
  // Whole seconds, so every tick's Scheduled Event "time" is exact.
  out->anchor_ms = (now_ms + 999) / 1000 * 1000;
  out->created_ms = now_ms;
  out->updated_ms = now_ms;
  return {0, "", ""};
}

}  // namespace gust::api

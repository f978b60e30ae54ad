#include "api/lambda_shapes.h"

#include <set>

#include "common/base64.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "store/arn.h"

namespace gust::api {
namespace {

constexpr const char* kFunctionNamePattern =
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?"
    "([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool AllNameChars(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!IsNameChar(c)) return false;
  return true;
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

ApiError Ok() { return ApiError{0, "", ""}; }

const std::set<std::string>& ReservedEnvKeys() {
  static const std::set<std::string> keys = {"_HANDLER",
                                             "_X_AMZN_TRACE_ID",
                                             "AWS_DEFAULT_REGION",
                                             "AWS_REGION",
                                             "AWS_EXECUTION_ENV",
                                             "AWS_LAMBDA_FUNCTION_NAME",
                                             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                             "AWS_LAMBDA_FUNCTION_VERSION",
                                             "AWS_LAMBDA_INITIALIZATION_TYPE",
                                             "AWS_LAMBDA_LOG_GROUP_NAME",
                                             "AWS_LAMBDA_LOG_STREAM_NAME",
                                             "AWS_ACCESS_KEY",
                                             "AWS_ACCESS_KEY_ID",
                                             "AWS_SECRET_ACCESS_KEY",
                                             "AWS_SESSION_TOKEN",
                                             "AWS_LAMBDA_RUNTIME_API",
                                             "LAMBDA_TASK_ROOT",
                                             "LAMBDA_RUNTIME_DIR"};
  return keys;
}

}  // namespace

ApiError FromStatus(const Status& status) {
  switch (status.code()) {
    case Code::kInvalidArgument:
      return {400, "InvalidParameterValueException", status.message()};
    case Code::kNotFound:
      return {404, "ResourceNotFoundException", status.message()};
    case Code::kConflict:
      return {409, "ResourceConflictException", status.message()};
    case Code::kTooManyRequests:
      return {429, "TooManyRequestsException", status.message()};
    case Code::kTooLarge:
      return {413, "RequestTooLargeException", status.message()};
    case Code::kUnsupportedMedia:
      return {415, "UnsupportedMediaTypeException", status.message()};
    case Code::kUnavailable:
      return {503, "ServiceException", status.message()};
    default:
      return {500, "ServiceException", status.message()};
  }
}

ApiError ValidationError(const std::string& value, const std::string& field,
                         const std::string& constraint) {
  return {400, "ValidationException",
          "1 validation error detected: Value '" + value + "' at '" + field +
              "' failed to satisfy constraint: " + constraint};
}

http::Response JsonResponse(int status, const nlohmann::json& body) {
  // Bodies carry client bytes (an invalid function name is quoted in its
  // error): JsonDump turns invalid UTF-8 into U+FFFD instead of throwing.
  return http::MakeResponse(static_cast<http::beast_http::status>(status),
                            body.is_null() ? "" : JsonDump(body));
}

http::Response ErrorResponse(const ApiError& error) {
  auto response = JsonResponse(error.status, {{"Type", "User"}, {"Message", error.message}});
  response.set("x-amzn-ErrorType", error.type);
  return response;
}

Result<FunctionRef> ParseFunctionRef(const std::string& text) {
  auto invalid = [&] {
    return Status::InvalidArgument(
        ValidationError(
            text, "functionName",
            std::string("Member must satisfy regular expression pattern: ") + kFunctionNamePattern)
            .message);
  };
  if (text.empty() || text.size() > 170) return invalid();
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  FunctionRef ref;
  size_t name_index;
  if (parts[0] == "arn") {
    // arn:aws:lambda:region:account:function:name[:qualifier]
    if (parts.size() < 7 || parts.size() > 8 || parts[2] != "lambda" || parts[5] != "function") {
      return invalid();
    }
    name_index = 6;
  } else if (parts.size() >= 3 && parts[1] == "function") {
    if (!AllDigits(parts[0]) || parts.size() > 4) return invalid();
    name_index = 2;
  } else {
    if (parts.size() > 2) return invalid();
    name_index = 0;
  }
  ref.name = parts[name_index];
  if (name_index + 1 < parts.size()) ref.qualifier = parts[name_index + 1];
  if (!AllNameChars(ref.name) || ref.name.size() > 64) return invalid();
  if (!ref.qualifier.empty() && ref.qualifier != kLatest && !AllNameChars(ref.qualifier)) {
    return invalid();
  }
  return ref;
}

ApiError CheckFunctionName(const std::string& name) {
  if (name.empty() || name.size() > 64 || !AllNameChars(name)) {
    return ValidationError(name, "functionName",
                           "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ "
                           "and have length between 1 and 64");
  }
  return Ok();
}

// Lambda's wording for a number outside [min, max] (botocore's model constraints).
ApiError CheckRange(int value, int min, int max, const std::string& field) {
  if (value < min)
    return ValidationError(
        std::to_string(value), field,
        "Member must have value greater than or equal to " + std::to_string(min));
  if (value > max)
    return ValidationError(std::to_string(value), field,
                           "Member must have value less than or equal to " + std::to_string(max));
  return Ok();
}

std::string AboveCeiling(const std::string& what, int64_t value, const char* flag, int ceiling,
                         const char* unit) {
  return what + " " + std::to_string(value) + " is above this engine's --" + flag + " of " +
         std::to_string(ceiling) + " " + unit + " (set by gust up --" + flag + ")";
}

// Lambda's wording below the minimum; above the engine's ceiling, a message
// naming it (the operator's choice, not Lambda's 10240 MB and 900 s).
ApiError CheckMemory(int memory_mb, int max_memory_mb) {
  if (memory_mb > max_memory_mb) {
    return ValidationError(
        std::to_string(memory_mb), "memorySize",
        AboveCeiling("MemorySize", memory_mb, "max-memory", max_memory_mb, "MB"));
  }
  return CheckRange(memory_mb, kMinMemoryMb, max_memory_mb, "memorySize");
}

ApiError CheckTimeout(int timeout_s, int max_timeout_s) {
  if (timeout_s > max_timeout_s) {
    return ValidationError(
        std::to_string(timeout_s), "timeout",
        AboveCeiling("Timeout", timeout_s, "max-timeout", max_timeout_s, "seconds"));
  }
  return CheckRange(timeout_s, 1, max_timeout_s, "timeout");
}

ApiError CheckEphemeralStorage(int size_mb) {
  if (size_mb < 512 || size_mb > 10240)
    return ValidationError(std::to_string(size_mb), "ephemeralStorage.size",
                           "Member must have value between 512 and 10240");
  return Ok();
}

ApiError CheckRuntime(const std::string& runtime) {
  if (runtime == "python3.11") return Ok();
  return {400, "InvalidParameterValueException",
          "The runtime parameter of " + runtime +
              " is not supported by this engine. Supported runtimes: python3.11 (the sandbox "
              "interpreter is /usr/bin/python3, CPython 3.11)."};
}

ApiError CheckHandler(const std::string& handler) {
  bool bad = handler.empty() || handler.size() > 128;
  for (char c : handler)
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') bad = true;
  if (bad)
    return ValidationError(handler, "handler",
                           "Member must satisfy regular expression pattern: [^\\s]+ and have "
                           "length between 1 and 128");
  return Ok();
}

ApiError CheckEnvironment(const std::map<std::string, std::string>& env) {
  std::vector<std::string> reserved;
  for (const auto& [key, value] : env) {
    bool valid =
        key.size() >= 2 && ((key[0] >= 'a' && key[0] <= 'z') || (key[0] >= 'A' && key[0] <= 'Z'));
    for (char c : key) {
      if (!(IsNameChar(c) && c != '-')) valid = false;
    }
    if (!valid) {
      return ValidationError(key, "environment.variables",
                             "Map keys must satisfy constraint: [Member must satisfy regular "
                             "expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]");
    }
    if (ReservedEnvKeys().count(key)) reserved.push_back(key);
  }
  if (!reserved.empty()) {
    std::string list;
    for (const auto& k : reserved) list += (list.empty() ? "" : ",") + k;
    return {400, "InvalidParameterValueException",
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not supported "
            "for modification. Reserved keys used in this request: " +
                list};
  }
  std::string measured = JsonDump(nlohmann::json(env));
  if (measured.size() > 4096) {
    return {400, "InvalidParameterValueException",
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: " +
                std::to_string(measured.size()) + " bytes"};
  }
  return Ok();
}

ApiError CheckAliasName(const std::string& name) {
  bool valid = !name.empty() && name.size() <= 128 && AllNameChars(name) && !AllDigits(name);
  if (!valid)
    return ValidationError(name, "name",
                           "Member must satisfy regular expression pattern: "
                           "(?!^[0-9]+$)([a-zA-Z0-9-_]+)");
  return Ok();
}

ApiError CheckPythonPath(const std::string& path, const std::string& field) {
  constexpr size_t kMaxPath = 4096;  // PATH_MAX: the kernel takes no longer one
  if (path.empty()) return Ok();
  if (path[0] == '/' && path.size() <= kMaxPath &&
      path.find_first_of(std::string("\0\n\r", 3)) == std::string::npos) {
    return Ok();
  }
  std::string shown = path.size() > 200 ? path.substr(0, 200) + "..." : path;
  return {400, "InvalidParameterValueException",
          field +
              " must be the absolute path of a Python interpreter (at most 4096 bytes, no "
              "NUL or newline), not " +
              JsonDump(nlohmann::json(shown))};
}

std::string CodeSha256Base64(const std::string& hex_digest) {
  auto raw = HexDecode(hex_digest);
  return raw.ok() ? Base64Encode(*raw) : "";
}

nlohmann::json FunctionConfigurationJson(const FunctionConfig& c) {
  nlohmann::json doc = {
      {"FunctionName", c.name},
      {"FunctionArn", FunctionArn(c.name, c.version == kLatest ? "" : c.version)},
      {"Runtime", c.runtime},
      {"Role", c.role},
      {"Handler", c.handler},
      {"CodeSize", c.code_size},
      {"Description", c.description},
      {"Timeout", c.timeout_s},
      {"MemorySize", c.memory_mb},
      {"LastModified", FormatLambdaTimestamp(c.last_modified_ms)},
      {"CodeSha256", CodeSha256Base64(c.code_sha256)},
      {"Version", c.version},
      {"TracingConfig", {{"Mode", "PassThrough"}}},
      {"RevisionId", c.revision_id},
      {"State", "Active"},
      {"LastUpdateStatus", "Successful"},
      {"PackageType", "Zip"},
      {"Architectures", {"x86_64"}},
      {"EphemeralStorage", {{"Size", c.ephemeral_storage_mb}}},
      {"LoggingConfig", {{"LogFormat", "Text"}, {"LogGroup", "/aws/lambda/" + c.name}}},
      // gust extensions (ignored by AWS clients)
      {"Network", c.network},
  };
  if (!c.python.empty()) doc[kPythonField] = c.python;
  if (!c.buckets.empty()) doc[kBucketsField] = c.buckets;
  if (c.keep_alive_s >= 0) doc["KeepAliveSeconds"] = c.keep_alive_s;
  if (!c.env.empty()) doc["Environment"] = {{"Variables", c.env}};
  return doc;
}

nlohmann::json AliasJson(const AliasConfig& a) {
  return {{"AliasArn", FunctionArn(a.function, a.name)},
          {"Name", a.name},
          {"FunctionVersion", a.version},
          {"Description", a.description},
          {"RevisionId", a.revision_id}};
}

}  // namespace gust::api

// Lambda API shapes: errors as Lambda reports them (HTTP status,
// x-amzn-ErrorType header, {"Type","Message"} body — botocore reads the header
// first), validation of user input with Lambda's wording, and the JSON
// documents of FunctionConfiguration and AliasConfiguration (field names from
// botocore's lambda/2015-03-31 service model).
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>

#include "common/config.h"
#include "common/status.h"
#include "http/server.h"
#include "store/metadata_store.h"

namespace gust::api {

// An error the API answers with. type is the Lambda error code
// ("ResourceNotFoundException"); status the HTTP status.
struct ApiError {
  int status = 500;
  std::string type = "ServiceException";
  std::string message;
};

// gust's extension field of Create/UpdateFunctionConfiguration and
// GetFunction(Configuration): the Python environment a function runs in
// (FunctionConfig::python; docs/ENVIRONMENTS.md). Prefixed so no field AWS
// adds can collide with it; absent when the function runs in the engine's own.
inline constexpr char kPythonField[] = "GustPython";
// Likewise: the buckets the function's sandboxes may use through the sandbox
// channel, ["NAME", "NAME:ro"] (FunctionConfig::buckets, store/bucket_grants.h);
// absent when none.
inline constexpr char kBucketsField[] = "GustBuckets";

ApiError FromStatus(const Status& status);
ApiError ValidationError(const std::string& value, const std::string& field,
                         const std::string& constraint);
http::Response ErrorResponse(const ApiError& error);
http::Response JsonResponse(int status, const nlohmann::json& body);

// A function reference in a path or FunctionName: "name", "name:qualifier",
// "123456789012:function:name[:q]" or "arn:aws:lambda:region:acct:function:name[:q]".
struct FunctionRef {
  std::string name;
  std::string qualifier;  // "" if none
};
Result<FunctionRef> ParseFunctionRef(
    const std::string& text);  // kInvalidArgument -> ValidationError

// Each returns an ApiError with status 0 when the value is acceptable.
ApiError CheckFunctionName(const std::string& name);
// Memory from 128 MB, timeout from 1 s, each up to the engine's ceiling
// (EngineConfig::max_memory_mb / max_timeout_s); above it the message names
// the ceiling and the `gust up` option that sets it.
ApiError CheckMemory(int memory_mb, int max_memory_mb);
ApiError CheckTimeout(int timeout_s, int max_timeout_s);
// "<what> <value> is above this engine's --<flag> of <ceiling> <unit> (set by
// gust up --<flag>)": the words of every check against a ceiling.
std::string AboveCeiling(const std::string& what, int64_t value, const char* flag, int ceiling,
                         const char* unit);
ApiError CheckEphemeralStorage(int size_mb);
ApiError CheckRuntime(const std::string& runtime);
ApiError CheckHandler(const std::string& handler);
ApiError CheckEnvironment(const std::map<std::string, std::string>& env);
ApiError CheckAliasName(const std::string& name);
// A Python environment's interpreter as a function or map names it
// (FunctionConfig::python): "" (the engine's own) or an absolute path of at
// most 4096 bytes without NUL or newline; the error names `field`.
ApiError CheckPythonPath(const std::string& path, const std::string& field);
// Lambda's ValidationException wording for a number outside [min, max].
ApiError CheckRange(int value, int min, int max, const std::string& field);

nlohmann::json FunctionConfigurationJson(const FunctionConfig& config);
nlohmann::json AliasJson(const AliasConfig& alias);
// Lambda's CodeSha256: base64 of the raw digest (our store keys are hex).
std::string CodeSha256Base64(const std::string& hex_digest);

}  // namespace gust::api

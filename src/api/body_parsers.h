// Parsers of API request bodies, outside the handlers that call them so they
// can be tested and fuzzed alone (tests/fuzz, docs/FUZZING.md) without a live
// engine: the Lambda configuration fields, a map job's header and cancel body
// (/v1/jobs), async-invocation config and redrive bodies, schedule documents.
//
// Everything here reads a client's input: any JSON of any shape, any bytes.
// Errors are values — an ApiError with status != 0 (400, naming the field and
// the problem) — never an exception: JSON members are type-checked before
// they are read. What needs the store (does the function exist? the
// destination?) is the caller's check, after these.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/lambda_shapes.h"
#include "common/config.h"
#include "store/bucket_grants.h"
#include "store/schedule_store.h"

namespace gust::api {

class RequestFields;

// 400 InvalidParameterValueException with `message`.
ApiError BadField(const std::string& message);
// 64 lower-case hex digits (a sha256, as blob and code names are).
bool IsSha256Hex(const std::string& s);

// Lambda: reads the configuration fields shared by CreateFunction and
// UpdateFunctionConfiguration (Runtime, Handler, MemorySize, Timeout,
// EphemeralStorage, Environment, Network, KeepAliveSeconds...) from f into c
// and validates each (memory and timeout against engine's ceilings); the
// error names the first bad one.
ApiError ApplyConfigFields(RequestFields& f, const EngineConfig& engine, FunctionConfig& c);

// The engine's own Python as "major.minor" (/v1/health reports it).
const char* RuntimePythonVersion();

// The client's Python environment as a map job's header names it (docs/MAP.md):
// the map's tasks run in it (docs/ENVIRONMENTS.md).
struct ClientPython {
  std::string executable;   // sys.executable, absolute, as the client runs it
  std::string prefix;       // sys.prefix
  std::string base_prefix;  // sys.base_prefix (differs from prefix in a venv)
  std::string version;      // "major.minor[.micro...]", at least 3.9
};

// A map job's settings from its header line (docs/MAP.md), defaults filled in.
struct JobHeader {
  std::string code;  // sha256 of the uploaded code zip
  int memory = 256, retries = 2, chunksize = 0;
  int timeout = 300;               // per task, s; 0: none of its own (the engine's --max-timeout)
  int concurrency = 0, ttl_s = 0;  // defaults from the EngineConfig
  double straggler_factor = 0;
  bool network = false;
  ClientPython python;
  BucketGrants buckets;  // kJobBucketsField
};
// The job header's grants: the buckets its tasks may use through the sandbox
// channel, ["NAME", "NAME:ro"] (store/bucket_grants.h; docs/STORAGE.md).
inline constexpr char kJobBucketsField[] = "Buckets";
// Grants as texts, parsed: 400 InvalidParameterValueException "<field>: bucket
// grant 'X' is not ..." naming the bad one.
ApiError CheckBucketGrants(const std::vector<std::string>& texts, const std::string& field,
                           BucketGrants* out);
// Validates a job header (engine::ParseJobBody's JSON object).
ApiError ParseJobHeader(const nlohmann::json& header, const EngineConfig& config, JobHeader* out);
// A cancel body: empty (every task) or {"tasks": [task indexes]}; appends to tasks.
ApiError ParseCancelBody(const std::string& body, std::vector<uint32_t>* tasks);

// The fields of an event-invoke-config body (PUT/POST), type- and range-checked.
struct EventInvokeConfigBody {
  std::optional<int64_t> max_retry_attempts;
  std::optional<int64_t> max_event_age_s;
  std::optional<std::string> on_success;  // destination ARNs ("" = none)
  std::optional<std::string> on_failure;
};
ApiError ParseEventInvokeConfigBody(const std::string& body, EventInvokeConfigBody* out);
// A redrive body: {} (every dead letter) or {"request_ids": [strings]}; appends to ids.
ApiError ParseRedriveBody(const std::string& body, std::vector<std::string>* ids);

// A schedule from a request document (PUT /v1/schedules/{name}, or one of a
// group's): name, field types, expression, time zone, kind and payload are
// checked; `now_ms` stamps it (anchor, created, updated).
ApiError ParseScheduleDoc(const nlohmann::json& doc, const std::string& name,
                          const std::string& group, int64_t now_ms, Schedule* out);

}  // namespace gust::api

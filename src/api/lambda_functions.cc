// Management handlers of LambdaApi: functions, versions, aliases, concurrency.
#include <boost/asio/post.hpp>

#include <functional>

#include "api/body_parsers.h"
#include "api/lambda_api.h"
#include "api/request_fields.h"
#include "api/run_guarded.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/ids.h"
#include "store/arn.h"

namespace gust::api {

using beast_verb = http::beast_http::verb;

namespace {

ApiError Fine() { return ApiError{0, "", ""}; }

// Applies the configuration fields shared by CreateFunction and
// UpdateFunctionConfiguration, validating each: ApplyConfigFields (body_parsers.h).

Result<FunctionRef> PathFunction(const http::RouteMatch& m) {
  auto it = m.params.find("name");
  if (it == m.params.end()) return Status::Internal("route without {name}");
  auto ref = ParseFunctionRef(it->second);
  if (!ref.ok()) return ref.status();
  // A qualifier may come in the path ("f:prod") or the query (?Qualifier=prod).
  if (auto q = m.query.find("Qualifier"); q != m.query.end() && !q->second.empty()) {
    ref->qualifier = q->second;
  }
  return ref;
}

http::Response Error(const Status& s) {
  // Malformed names surface as InvalidArgument from ParseFunctionRef with a
  // ValidationException message.
  if (s.code() == Code::kInvalidArgument && s.message().rfind("1 validation error", 0) == 0) {
    return ErrorResponse({400, "ValidationException", s.message()});
  }
  return ErrorResponse(FromStatus(s));
}

}  // namespace

LambdaApi::LambdaApi(const ApiContext& ctx)
    : io_(ctx.io),
      workers_(ctx.workers),
      store_(ctx.store),
      blobs_(ctx.blobs),
      bundles_(ctx.bundles),
      invoker_(ctx.invoker),
      async_(ctx.async),
      config_(ctx.config),
      public_url_(ctx.info.url),
      forwarder_(ctx.forwarder) {}

void LambdaApi::Changed(const std::string& function, engine::Invoker::Change change) {
  boost::asio::post(io_, [this, function, change] {
    invoker_.FunctionChanged(function, change);
    async_.ConfigChanged(function);  // a deleted function takes its event invoke configs along
  });
}

void LambdaApi::Register(http::Router& router) {
  auto& w = workers_;
  const std::string fn = "/2015-03-31/functions";
  router.Add(beast_verb::post, fn, OnWorkers(w, this, &LambdaApi::CreateFunction));
  router.Add(beast_verb::get, fn, OnWorkers(w, this, &LambdaApi::ListFunctions));
  router.Add(beast_verb::get, fn + "/{name}", OnWorkers(w, this, &LambdaApi::GetFunction));
  router.Add(beast_verb::delete_, fn + "/{name}", OnWorkers(w, this, &LambdaApi::DeleteFunction));
  router.Add(beast_verb::get, fn + "/{name}/configuration",
             OnWorkers(w, this, &LambdaApi::GetFunctionConfiguration));
  router.Add(beast_verb::put, fn + "/{name}/configuration",
             OnWorkers(w, this, &LambdaApi::UpdateConfiguration));
  router.Add(beast_verb::put, fn + "/{name}/code", OnWorkers(w, this, &LambdaApi::UpdateCode));
  router.Add(beast_verb::post, fn + "/{name}/versions",
             OnWorkers(w, this, &LambdaApi::PublishVersion));
  router.Add(beast_verb::get, fn + "/{name}/versions",
             OnWorkers(w, this, &LambdaApi::ListVersions));
  router.Add(beast_verb::post, fn + "/{name}/aliases", OnWorkers(w, this, &LambdaApi::CreateAlias));
  router.Add(beast_verb::get, fn + "/{name}/aliases", OnWorkers(w, this, &LambdaApi::ListAliases));
  router.Add(beast_verb::get, fn + "/{name}/aliases/{alias}",
             OnWorkers(w, this, &LambdaApi::GetAlias));
  router.Add(beast_verb::put, fn + "/{name}/aliases/{alias}",
             OnWorkers(w, this, &LambdaApi::UpdateAlias));
  router.Add(beast_verb::delete_, fn + "/{name}/aliases/{alias}",
             OnWorkers(w, this, &LambdaApi::DeleteAlias));
  router.Add(beast_verb::put, "/2017-10-31/functions/{name}/concurrency",
             OnWorkers(w, this, &LambdaApi::PutConcurrency));
  router.Add(beast_verb::delete_, "/2017-10-31/functions/{name}/concurrency",
             OnWorkers(w, this, &LambdaApi::DeleteConcurrency));
  router.Add(beast_verb::get, "/2019-09-30/functions/{name}/concurrency",
             OnWorkers(w, this, &LambdaApi::GetConcurrency));
  router.Add(beast_verb::post, fn + "/{name}/invocations",
             std::bind_front(&LambdaApi::Invoke, this));
}

ApiError LambdaApi::StoreCode(const Json& zip_field, FunctionConfig& config, bool dry_run) {
  if (!zip_field.is_string()) {
    return BadJsonError("field 'ZipFile' must be a base64 string");
  }
  auto zip = Base64Decode(zip_field.get_ref<const std::string&>());
  if (!zip.ok()) {
    return {400, "InvalidParameterValueException",
            "ZipFile is not valid base64: " + zip.status().message()};
  }
  if (zip->size() > kMaxZipBytes) {
    return {413, "RequestEntityTooLargeException",
            "Zipped size must be smaller than " + std::to_string(kMaxZipBytes) + " bytes"};
  }
  auto info = ValidateZip(*zip);
  if (!info.ok()) return FromStatus(info.status());
  if (dry_run) {
    config.code_sha256 = Sha256Hex(*zip);
    config.code_size = static_cast<int64_t>(zip->size());
    return Fine();
  }
  // Extracted before the blob is stored: a zip that fails extraction (sizes
  // that lie, corrupt data) must leave nothing on disk.
  const std::string digest = Sha256Hex(*zip);
  auto dir = bundles_.Ensure(digest, *zip);
  if (!dir.ok()) return FromStatus(dir.status());
  auto stored = blobs_.Put(*zip);
  if (!stored.ok()) return FromStatus(stored.status());
  config.code_sha256 = digest;
  config.code_size = static_cast<int64_t>(zip->size());
  return Fine();
}

http::Response LambdaApi::CreateFunction(const http::Request& req, const http::RouteMatch&) {
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return ErrorResponse(BadJsonError(body.status().message()));
  RequestFields f(*body);
  auto name_field = f.String("FunctionName");
  if (!f.ok()) return ErrorResponse(f.error());
  if (!name_field) {
    return ErrorResponse({400, "InvalidParameterValueException", "FunctionName is required"});
  }
  auto ref = ParseFunctionRef(*name_field);
  if (!ref.ok()) return Error(ref.status());
  if (auto e = CheckFunctionName(ref->name); e.status) return ErrorResponse(e);

  FunctionConfig config;
  config.name = ref->name;
  if (!f.Has("Handler")) {
    return ErrorResponse({400, "InvalidParameterValueException",
                          "Handler is required for a Zip function (e.g. \"app.handler\")"});
  }
  if (auto e = ApplyConfigFields(f, config_, config); e.status) return ErrorResponse(e);
  if (auto pkg = f.String("PackageType"); pkg && *pkg != "Zip") {
    return ErrorResponse({400, "InvalidParameterValueException",
                          "PackageType " + *pkg + " is not supported: gust runs Zip functions"});
  }
  auto code = body->find("Code");
  if (code == body->end() || !code->is_object()) {
    return ErrorResponse({400, "InvalidParameterValueException",
                          "Code is required: {\"ZipFile\": <base64 of a zip>}"});
  }
  if (!code->contains("ZipFile")) {
    return ErrorResponse({400, "InvalidParameterValueException",
                          "gust accepts code as Code.ZipFile only (no S3Bucket or ImageUri)"});
  }
  auto publish = f.Bool("Publish");
  if (!f.ok()) return ErrorResponse(f.error());
  // Fail fast on a duplicate before storing the code.
  if (store_.GetFunction(config.name, kLatest).ok()) {
    return ErrorResponse(FromStatus(Status::Conflict("Function already exist: " + config.name)));
  }
  if (auto e = StoreCode((*code)["ZipFile"], config); e.status) return ErrorResponse(e);
  config.revision_id = NewRequestId();
  config.last_modified_ms = NowEpochMs();
  if (auto st = store_.CreateFunction(config); !st.ok()) return Error(st);
  Changed(config.name, engine::Invoker::Change::kLatest);
  if (publish.value_or(false)) {
    auto published = store_.PublishVersion(config.name, "");
    if (!published.ok()) return Error(published.status());
    return JsonResponse(201, FunctionConfigurationJson(*published));
  }
  return JsonResponse(201, FunctionConfigurationJson(config));
}

http::Response LambdaApi::GetFunction(const http::Request&, const http::RouteMatch& m) {
  return DescribeFunction(m, false);
}

http::Response LambdaApi::GetFunctionConfiguration(const http::Request&,
                                                   const http::RouteMatch& m) {
  return DescribeFunction(m, true);
}

http::Response LambdaApi::DescribeFunction(const http::RouteMatch& m, bool configuration_only) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto config = GetFunctionByQualifier(store_, ref->name, ref->qualifier);
  if (!config.ok()) return Error(config.status());
  Json doc = FunctionConfigurationJson(*config);
  if (configuration_only) return JsonResponse(200, doc);
  Json out = {{"Configuration", doc},
              {"Code",
               {{"RepositoryType", "S3"},
                {"Location", public_url_ + "/v1/code/" + config->code_sha256 + ".zip"}}},
              {"Tags", Json::object()}};
  auto settings = store_.GetSettings(ref->name);
  if (settings.ok() && settings->reserved_concurrency) {
    out["Concurrency"] = {{"ReservedConcurrentExecutions", *settings->reserved_concurrency}};
  }
  return JsonResponse(200, out);
}

http::Response LambdaApi::ListFunctions(const http::Request&, const http::RouteMatch& m) {
  int max_items = 50;
  if (auto it = m.query.find("MaxItems"); it != m.query.end()) {
    char* end = nullptr;
    long v = std::strtol(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || v < 1 || v > 10000) {
      return ErrorResponse(
          ValidationError(it->second, "maxItems", "Member must have value between 1 and 10000"));
    }
    max_items = static_cast<int>(std::min(v, 50L));
  }
  std::string marker = m.query.count("Marker") ? m.query.at("Marker") : "";
  bool all_versions = false;
  if (auto it = m.query.find("FunctionVersion"); it != m.query.end()) {
    if (it->second != "ALL") {
      return ErrorResponse(ValidationError(it->second, "functionVersion",
                                           "Member must satisfy enum value set: [ALL]"));
    }
    all_versions = true;
  }
  auto page = store_.ListFunctions(marker, max_items, all_versions);
  if (!page.ok()) return Error(page.status());
  Json functions = Json::array();
  for (const auto& c : page->functions) functions.push_back(FunctionConfigurationJson(c));
  Json out = {{"Functions", functions}};
  if (!page->next_marker.empty()) out["NextMarker"] = page->next_marker;
  return JsonResponse(200, out);
}

http::Response LambdaApi::UpdateCode(const http::Request& req, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return ErrorResponse(BadJsonError(body.status().message()));
  RequestFields f(*body);
  auto publish = f.Bool("Publish");
  auto dry_run = f.Bool("DryRun");
  auto expected = f.String("RevisionId");
  if (!f.ok()) return ErrorResponse(f.error());
  if (!body->contains("ZipFile")) {
    return ErrorResponse({400, "InvalidParameterValueException",
                          "gust accepts code as ZipFile only (no S3Bucket or ImageUri)"});
  }
  auto current = store_.GetFunction(ref->name, kLatest);
  if (!current.ok()) return Error(current.status());
  FunctionConfig config = *current;
  if (auto e = StoreCode((*body)["ZipFile"], config, dry_run.value_or(false)); e.status) {
    return ErrorResponse(e);
  }
  if (dry_run.value_or(false)) {
    // Lambda: validate the request (the zip) without changing the function.
    return JsonResponse(200, FunctionConfigurationJson(config));
  }
  config.revision_id = NewRequestId();
  config.last_modified_ms = NowEpochMs();
  if (auto st = store_.UpdateLatest(config, expected.value_or(current->revision_id)); !st.ok()) {
    return Error(st);
  }
  Changed(config.name, engine::Invoker::Change::kLatest);
  if (publish.value_or(false)) {
    auto published = store_.PublishVersion(config.name, "");
    if (!published.ok()) return Error(published.status());
    return JsonResponse(200, FunctionConfigurationJson(*published));
  }
  return JsonResponse(200, FunctionConfigurationJson(config));
}

http::Response LambdaApi::UpdateConfiguration(const http::Request& req, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return ErrorResponse(BadJsonError(body.status().message()));
  auto current = store_.GetFunction(ref->name, kLatest);
  if (!current.ok()) return Error(current.status());
  FunctionConfig config = *current;
  RequestFields f(*body);
  auto expected = f.String("RevisionId");
  if (auto e = ApplyConfigFields(f, config_, config); e.status) return ErrorResponse(e);
  config.revision_id = NewRequestId();
  config.last_modified_ms = NowEpochMs();
  if (auto st = store_.UpdateLatest(config, expected.value_or(current->revision_id)); !st.ok()) {
    return Error(st);
  }
  Changed(config.name, engine::Invoker::Change::kLatest);
  return JsonResponse(200, FunctionConfigurationJson(config));
}

http::Response LambdaApi::DeleteFunction(const http::Request&, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  Status st = ref->qualifier.empty() || ref->qualifier == kLatest
                  ? store_.DeleteFunction(ref->name)
                  : store_.DeleteVersion(ref->name, ref->qualifier);
  if (!st.ok()) return Error(st);
  Changed(ref->name, engine::Invoker::Change::kDeleted);
  return JsonResponse(204, nullptr);
}

http::Response LambdaApi::PublishVersion(const http::Request& req, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return ErrorResponse(BadJsonError(body.status().message()));
  RequestFields f(*body);
  auto description = f.String("Description");
  auto expected = f.String("RevisionId");
  if (!f.ok()) return ErrorResponse(f.error());
  if (expected) {
    auto current = store_.GetFunction(ref->name, kLatest);
    if (!current.ok()) return Error(current.status());
    if (current->revision_id != *expected) {
      return Error(Status::Conflict(
          "The Revision Id provided does not match the latest Revision Id. Call the "
          "GetFunction/GetAlias API to retrieve the latest Revision Id"));
    }
  }
  auto published = store_.PublishVersion(ref->name, description.value_or(""));
  if (!published.ok()) return Error(published.status());
  return JsonResponse(201, FunctionConfigurationJson(*published));
}

http::Response LambdaApi::ListVersions(const http::Request&, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto versions = store_.ListVersions(ref->name);
  if (!versions.ok()) return Error(versions.status());
  Json list = Json::array();
  for (const auto& v : *versions) list.push_back(FunctionConfigurationJson(v));
  return JsonResponse(200, {{"Versions", list}});
}

http::Response LambdaApi::CreateAlias(const http::Request& req, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return ErrorResponse(BadJsonError(body.status().message()));
  RequestFields f(*body);
  AliasConfig alias;
  alias.function = ref->name;
  alias.name = f.String("Name").value_or("");
  alias.version = f.String("FunctionVersion").value_or("");
  alias.description = f.String("Description").value_or("");
  if (!f.ok()) return ErrorResponse(f.error());
  if (auto e = CheckAliasName(alias.name); e.status) return ErrorResponse(e);
  if (alias.version.empty()) {
    return ErrorResponse({400, "InvalidParameterValueException", "FunctionVersion is required"});
  }
  alias.revision_id = NewRequestId();
  if (auto st = store_.CreateAlias(alias); !st.ok()) return Error(st);
  Changed(ref->name, engine::Invoker::Change::kRouting);
  return JsonResponse(201, AliasJson(alias));
}

http::Response LambdaApi::GetAlias(const http::Request&, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto alias = store_.GetAlias(ref->name, m.params.at("alias"));
  if (!alias.ok()) return Error(alias.status());
  return JsonResponse(200, AliasJson(*alias));
}

http::Response LambdaApi::UpdateAlias(const http::Request& req, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return ErrorResponse(BadJsonError(body.status().message()));
  auto current = store_.GetAlias(ref->name, m.params.at("alias"));
  if (!current.ok()) return Error(current.status());
  AliasConfig alias = *current;
  RequestFields f(*body);
  if (auto v = f.String("FunctionVersion")) alias.version = *v;
  if (auto v = f.String("Description")) alias.description = *v;
  auto expected = f.String("RevisionId");
  if (!f.ok()) return ErrorResponse(f.error());
  if (expected && *expected != current->revision_id) {
    return Error(
        Status::Conflict("The Revision Id provided does not match the latest Revision Id. Call the "
                         "GetFunction/GetAlias API to retrieve the latest Revision Id"));
  }
  alias.revision_id = NewRequestId();
  if (auto st = store_.UpdateAlias(alias); !st.ok()) return Error(st);
  Changed(ref->name, engine::Invoker::Change::kRouting);
  return JsonResponse(200, AliasJson(alias));
}

http::Response LambdaApi::DeleteAlias(const http::Request&, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  if (auto st = store_.DeleteAlias(ref->name, m.params.at("alias")); !st.ok()) return Error(st);
  Changed(ref->name, engine::Invoker::Change::kRouting);
  return JsonResponse(204, nullptr);
}

http::Response LambdaApi::ListAliases(const http::Request&, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto aliases = store_.ListAliases(ref->name);
  if (!aliases.ok()) return Error(aliases.status());
  Json list = Json::array();
  for (const auto& a : *aliases) list.push_back(AliasJson(a));
  return JsonResponse(200, {{"Aliases", list}});
}

http::Response LambdaApi::PutConcurrency(const http::Request& req, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  auto body = ParseJsonBody(req.body());
  if (!body.ok()) return ErrorResponse(BadJsonError(body.status().message()));
  RequestFields f(*body);
  auto reserved = f.Int("ReservedConcurrentExecutions");
  if (!f.ok()) return ErrorResponse(f.error());
  if (!reserved || *reserved < 0 || *reserved > 100000) {
    return ErrorResponse(ValidationError(reserved ? std::to_string(*reserved) : "null",
                                         "reservedConcurrentExecutions",
                                         "Member must have value greater than or equal to 0"));
  }
  if (auto st = store_.GetFunction(ref->name, kLatest).status(); !st.ok()) return Error(st);
  FunctionSettings settings;
  settings.reserved_concurrency = static_cast<int>(*reserved);
  if (auto st = store_.PutSettings(ref->name, settings); !st.ok()) return Error(st);
  Changed(ref->name, engine::Invoker::Change::kRouting);
  return JsonResponse(200, {{"ReservedConcurrentExecutions", *reserved}});
}

http::Response LambdaApi::GetConcurrency(const http::Request&, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  if (auto st = store_.GetFunction(ref->name, kLatest).status(); !st.ok()) return Error(st);
  auto settings = store_.GetSettings(ref->name);
  if (!settings.ok()) return Error(settings.status());
  Json out = Json::object();
  if (settings->reserved_concurrency) {
    out["ReservedConcurrentExecutions"] = *settings->reserved_concurrency;
  }
  return JsonResponse(200, out);
}

http::Response LambdaApi::DeleteConcurrency(const http::Request&, const http::RouteMatch& m) {
  auto ref = PathFunction(m);
  if (!ref.ok()) return Error(ref.status());
  if (auto st = store_.GetFunction(ref->name, kLatest).status(); !st.ok()) return Error(st);
  if (auto st = store_.PutSettings(ref->name, FunctionSettings{}); !st.ok()) return Error(st);
  Changed(ref->name, engine::Invoker::Change::kRouting);
  return JsonResponse(204, nullptr);
}

}  // namespace gust::api

// LambdaApi::Invoke: the hot path. Runs on the engine thread and goes straight
// into the Invoker; no locks, no blocking calls.
#include "api/forwarder.h"
#include "api/lambda_api.h"
#include "common/base64.h"
#include "common/json_read.h"

namespace gust::api {

namespace {

constexpr size_t kMaxClientContextBytes = 3583;

std::string HeaderValue(const http::Request& req, const char* name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

}  // namespace

void LambdaApi::Invoke(http::Request&& req, const http::RouteMatch& m, http::Responder responder) {
  auto fail = [&](const ApiError& e) { responder.Send(ErrorResponse(e)); };
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) {
    fail({400, "ValidationException", ref.status().message()});
    return;
  }
  if (auto q = m.query.find("Qualifier"); q != m.query.end() && !q->second.empty()) {
    ref->qualifier = q->second;
  }

  std::string type = HeaderValue(req, "X-Amz-Invocation-Type");
  if (type.empty()) type = "RequestResponse";
  if (type != "RequestResponse" && type != "DryRun" && type != "Event") {
    fail(ValidationError(type, "invocationType",
                         "Member must satisfy enum value set: [Event, RequestResponse, DryRun]"));
    return;
  }
  std::string log_type = HeaderValue(req, "X-Amz-Log-Type");
  if (!log_type.empty() && log_type != "None" && log_type != "Tail") {
    fail(ValidationError(log_type, "logType", "Member must satisfy enum value set: [None, Tail]"));
    return;
  }
  size_t limit = type == "Event" ? engine::kMaxAsyncPayloadBytes : engine::kMaxSyncPayloadBytes;
  if (req.body().size() > limit) {
    fail({413, "RequestTooLargeException",
          "Request must be smaller than " + std::to_string(limit) +
              " bytes for the InvokeFunction operation" +
              (type == "Event" ? " with InvocationType Event" : "")});
    return;
  }
  std::string client_context;
  if (std::string encoded = HeaderValue(req, "X-Amz-Client-Context"); !encoded.empty()) {
    if (encoded.size() > kMaxClientContextBytes) {
      fail({400, "InvalidParameterValueException",
            "Client context must be smaller than " + std::to_string(kMaxClientContextBytes) +
                " bytes"});
      return;
    }
    auto decoded = Base64Decode(encoded);
    if (!decoded.ok() || !JsonAccept(*decoded)) {
      fail({400, "InvalidParameterValueException", "Client context must be base64-encoded JSON"});
      return;
    }
    client_context = std::move(decoded).value();
  }
  if (!req.body().empty() && !JsonAccept(req.body())) {
    fail({400, "InvalidRequestContentException",
          "Could not parse request body into json: Could not parse payload into json: the "
          "payload is not valid JSON"});
    return;
  }

  if (type == "DryRun") {
    Status st = invoker_.CheckExists(ref->name, ref->qualifier);
    if (!st.ok()) {
      fail(FromStatus(st));
      return;
    }
    responder.Send(http::MakeResponse(http::beast_http::status::no_content, ""));
    return;
  }

  if (type == "Event") {
    // Accepted (202) only once the event is on disk; Lambda ignores the client
    // context and log tail of an asynchronous invocation.
    Status st = invoker_.CheckExists(ref->name, ref->qualifier);
    if (!st.ok()) {
      fail(FromStatus(st));
      return;
    }
    AsyncEvent event;
    event.function = ref->name;
    event.qualifier = ref->qualifier;
    event.payload = req.body().empty() ? std::string("{}") : std::move(req.body());
    async_.Enqueue(std::move(event), [responder](Result<std::string> id) {
      if (!id.ok()) {
        responder.Send(ErrorResponse(FromStatus(id.status())));
        return;
      }
      auto response = http::MakeResponse(http::beast_http::status::accepted, "");
      response.set("x-amzn-RequestId", *id);
      responder.Send(std::move(response));
    });
    return;
  }

  if (forwarder_ != nullptr && forwarder_->Forward(req, ref->name, ref->qualifier, responder,
                                                   [this, m, responder](http::Request&& here) {
                                                     Invoke(std::move(here), m, responder);
                                                   })) {
    return;
  }
  engine::InvokeRequest request;
  request.function = ref->name;
  request.qualifier = ref->qualifier;
  request.payload = req.body().empty() ? std::string("{}") : std::move(req.body());
  request.tail_log = log_type == "Tail";
  request.client_context_json = std::move(client_context);
  invoker_.Invoke(std::move(request), [responder](engine::InvokeResponse r) {
    if (!r.status.ok()) {
      auto response = ErrorResponse(FromStatus(r.status));
      if (!r.throttle_reason.empty()) {
        // botocore reads Reason from the body of a TooManyRequestsException.
        response.body() = JsonDump(nlohmann::json{{"Type", "User"},
                                                  {"Message", r.status.message()},
                                                  {"Reason", r.throttle_reason},
                                                  {"retryAfterSeconds", "1"}});
        response.set("Retry-After", "1");
      }
      response.set("x-amzn-RequestId", r.request_id);
      responder.Send(std::move(response));
      return;
    }
    auto response = http::MakeResponse(http::beast_http::status::ok, std::move(r.payload));
    response.set("x-amzn-RequestId", r.request_id);
    response.set("X-Amz-Executed-Version", r.executed_version);
    if (r.function_error) response.set("X-Amz-Function-Error", "Unhandled");
    if (!r.log_tail.empty()) response.set("X-Amz-Log-Result", Base64Encode(r.log_tail));
    responder.Send(std::move(response));
  });
}

}  // namespace gust::api

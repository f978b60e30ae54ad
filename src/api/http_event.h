// HTTP events: how the gateway (gateway.h) hands one HTTP request to a
// function and turns the function's answer back into an HTTP response.
//
// Two encodings, chosen per function by the gateway:
//
//  - WSGI (functions whose handler is gust's stage adapter with a WSGI app,
//    `gust deploy STAGE`): a raw-bytes event (docs/RUNTIME_PROTOCOL.md "raw
//    events") laid out as
//        "GUSTWSGI1\n" | u32 LE n | n bytes: a JSON object of the WSGI/CGI
//        environ strings (REQUEST_METHOD, SCRIPT_NAME, PATH_INFO, QUERY_STRING,
//        CONTENT_TYPE, CONTENT_LENGTH, SERVER_*, REMOTE_ADDR, HTTP_*) | body
//    Environ strings are WSGI "bytes as latin-1" strings, so every byte of a
//    header or the decoded path survives; repeated headers are joined with
//    ", " (Cookie with "; ") as a WSGI server does. The body is the raw bytes.
//    The adapter answers raw bytes shaped like an HTTP/1.1 head:
//        "200 OK\r\nName: value\r\n...\r\n\r\n" | body
//    (latin-1, repeated names allowed: multi-value headers and cookies).
//
//  - API Gateway payload v2.0 (every other function): the JSON event AWS's
//    HTTP APIs send a Lambda proxy integration; the function answers
//    {statusCode, headers, cookies, body, isBase64Encoded} or a bare JSON
//    value (200, application/json), as API Gateway interprets it.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http/server.h"

namespace gust::api {

inline constexpr std::string_view kWsgiEventMagic = "GUSTWSGI1\n";

// Where a request was addressed, as the gateway routed it.
struct AppTarget {
  std::string app;          // function name
  std::string script_name;  // "/web/<app>" (path routing) or "" (Host routing)
  std::string raw_path;     // below the app's root, not decoded: "/time", "/a%20b"
  std::string raw_query;    // without '?'
};

struct RequestInfo {
  std::string remote_ip;  // "127.0.0.1"
  std::string request_id;
  int64_t now_ms = 0;  // epoch ms (v2.0 requestContext.time)
};

// Whether a request is for a web app: its target starts with /web/<app> or
// its Host is <app>.localhost (the gateway answers it, not the API router).
bool IsWebRequest(const http::Request& req);
// Splits a web request's target into the app and where inside it the request
// goes. Precondition: IsWebRequest(req).
AppTarget ParseTarget(const http::Request& req);

// The WSGI encoding of a request (see above); moves the body out of `req`.
std::string EncodeWsgiRequest(http::Request& req, const AppTarget& target, const RequestInfo& info);

// Parses the adapter's answer. InvalidArgument naming the problem if it is
// not a status line + headers + blank line.
Result<http::Response> DecodeWsgiResponse(std::string payload);

// The API Gateway payload v2.0 event of a request.
std::string EncodeEventV2(const http::Request& req, const AppTarget& target,
                          const RequestInfo& info);

// Interprets a function's answer to a v2.0 event. InvalidArgument if
// statusCode is not a valid status or a base64 body does not decode.
Result<http::Response> DecodeEventV2Response(const std::string& payload);

// A status line's reason phrase for a code ("Bad Gateway").
std::string_view ReasonPhrase(int status);

}  // namespace gust::api

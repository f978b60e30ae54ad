#include "api/http_event.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstring>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "common/clock.h"
#include "common/json_read.h"
#include "http/router.h"

namespace gust::api {

namespace beast_http = http::beast_http;
using Json = nlohmann::json;

namespace {

constexpr std::string_view kPathPrefix = "/web/";
constexpr std::string_view kHostSuffix = ".localhost";

// "<app>" of a Host header "<app>.localhost[:port]", or "" if it is not one.
std::string_view HostApp(std::string_view host) {
  size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']') == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (host.size() <= kHostSuffix.size()) return {};
  std::string_view suffix = host.substr(host.size() - kHostSuffix.size());
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(suffix[i])) != kHostSuffix[i]) return {};
  }
  return host.substr(0, host.size() - kHostSuffix.size());
}

std::string_view HostOf(const http::Request& req) {
  auto it = req.find(beast_http::field::host);
  return it == req.end() ? std::string_view() : std::string_view(it->value());
}

// One header after joining repeats, as a WSGI server presents it.
struct Field {
  std::string name;  // as received
  std::string value;
};

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// Request headers with repeated names joined by `separator` ("; " for Cookie).
std::vector<Field> JoinedFields(const http::Request& req, std::string_view separator) {
  std::vector<Field> fields;
  for (const auto& f : req) {
    std::string_view name = f.name_string();
    std::string_view value = f.value();
    bool merged = false;
    for (auto& existing : fields) {
      if (IEquals(existing.name, name)) {
        existing.value += IEquals(name, "cookie") ? std::string_view("; ") : separator;
        existing.value.append(value);
        merged = true;
        break;
      }
    }
    if (!merged) fields.push_back({std::string(name), std::string(value)});
  }
  return fields;
}

// Appends s as a JSON string whose characters are s's bytes (latin-1): the
// output is pure ASCII, and the adapter's json decoder yields WSGI's
// "bytes as latin-1" strings without a separate decode step.
void AppendLatin1JsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

void AppendPair(std::string& out, std::string_view key, std::string_view value) {
  if (out.size() > 1) out += ',';
  AppendLatin1JsonString(out, key);
  out += ':';
  AppendLatin1JsonString(out, value);
}

// "host:port" / "[v6]:port" / "host" -> (host, port or "80").
std::pair<std::string, std::string> SplitHost(std::string_view host) {
  if (host.empty()) return {"localhost", "80"};
  size_t colon = host.rfind(':');
  size_t bracket = host.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket))
    return {std::string(host), "80"};
  return {std::string(host.substr(0, colon)), std::string(host.substr(colon + 1))};
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || (extra == 1 && c < 0xc2)) return false;  // stray continuation, overlong
    if (i + static_cast<size_t>(extra) >= s.size() && extra > 0) return false;  // truncated
    for (int k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    if (extra == 2) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0))
        return false;  // overlong, surrogates
    } else if (extra == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xf0 && c1 < 0x90) || c > 0xf4 || (c == 0xf4 && c1 >= 0x90)) return false;
    }
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

// Hop-by-hop and framing headers: the engine frames the response itself.
bool IsFramingHeader(std::string_view name) {
  for (std::string_view h : {"connection", "keep-alive", "transfer-encoding", "content-length",
                             "upgrade", "proxy-connection", "te", "trailer"}) {
    if (IEquals(name, h)) return true;
  }
  return false;
}

bool HasControlBytes(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Apache's common log time: "12/Mar/2020:19:03:58 +0000" (requestContext.time).
std::string ClfTime(int64_t epoch_ms) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t secs = static_cast<time_t>(epoch_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Status BadResponse(const std::string& problem) {
  return Status::InvalidArgument("the app's response is malformed: " + problem);
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  return beast_http::obsolete_reason(static_cast<beast_http::status>(status));
}

std::string EncodeWsgiRequest(http::Request& req, const AppTarget& target,
                              const RequestInfo& info) {
  std::vector<Field> fields = JoinedFields(req, ", ");  // as WSGI servers do (RFC 9110)
  std::string environ = "{";
  environ.reserve(512 + req.target().size() * 2);
  AppendPair(environ, "REQUEST_METHOD", req.method_string());
  AppendPair(environ, "SCRIPT_NAME", target.script_name);
  AppendPair(environ, "PATH_INFO", http::PercentDecode(target.raw_path));
  AppendPair(environ, "QUERY_STRING", target.raw_query);
  AppendPair(environ, "REQUEST_URI", req.target());
  AppendPair(environ, "RAW_URI", req.target());
  AppendPair(environ, "SERVER_PROTOCOL", req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1");
  AppendPair(environ, "REMOTE_ADDR", info.remote_ip);
  std::string_view host;
  bool has_length = false;
  std::string key;
  for (const Field& f : fields) {
    if (IEquals(f.name, "content-type")) {
      AppendPair(environ, "CONTENT_TYPE", f.value);
      continue;
    }
    if (IEquals(f.name, "content-length")) {
      has_length = true;
      continue;  // from the body actually received, below
    }
    if (IEquals(f.name, "host")) host = f.value;
    key.assign("HTTP_");
    for (char c : f.name) {
      key += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    AppendPair(environ, key, f.value);
  }
  if (has_length || !req.body().empty()) {
    AppendPair(environ, "CONTENT_LENGTH", std::to_string(req.body().size()));
  }
  auto [server_name, server_port] = SplitHost(host);
  AppendPair(environ, "SERVER_NAME", server_name);
  AppendPair(environ, "SERVER_PORT", server_port);
  environ += '}';

  std::string payload;
  payload.reserve(kWsgiEventMagic.size() + 4 + environ.size() + req.body().size());
  payload.append(kWsgiEventMagic);
  uint32_t n = static_cast<uint32_t>(environ.size());
  char len[4] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                 static_cast<char>((n >> 16) & 0xff), static_cast<char>(n >> 24)};
  payload.append(len, 4);
  payload += environ;
  payload += req.body();
  std::string().swap(req.body());
  return payload;
}

Result<http::Response> DecodeWsgiResponse(std::string payload) {
  size_t head_end = payload.find("\r\n\r\n");
  if (head_end == std::string::npos) return BadResponse("no blank line after the headers");
  std::string_view head(payload.data(), head_end);
  size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (status_line.size() < 3 || !std::isdigit(static_cast<unsigned char>(status_line[0])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[1])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[2])) ||
      (status_line.size() > 3 && status_line[3] != ' ')) {
    return BadResponse("status line '" + std::string(status_line.substr(0, 64)) +
                       "' does not start with a 3-digit code");
  }
  int code = (status_line[0] - '0') * 100 + (status_line[1] - '0') * 10 + (status_line[2] - '0');
  if (code < 100) return BadResponse("status " + std::to_string(code) + " is not valid");
  http::Response response;
  response.result(static_cast<unsigned>(code));
  std::string_view reason = status_line.size() > 4 ? status_line.substr(4) : std::string_view();
  if (!reason.empty() && reason != ReasonPhrase(code)) response.reason(reason);

  while (line_end != std::string_view::npos) {
    size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    std::string_view line = head.substr(
        start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos)
      return BadResponse("header line '" + std::string(line.substr(0, 64)) + "' has no name");
    std::string_view name = line.substr(0, colon);
    std::string_view value = Trim(line.substr(colon + 1));
    if (HasControlBytes(value) || name.find_first_of(" \t\n") != std::string_view::npos)
      return BadResponse("header '" + std::string(name.substr(0, 64)) +
                         "' holds a control character");
    if (IsFramingHeader(name)) continue;
    response.insert(name, value);
  }
  payload.erase(0, head_end + 4);
  response.body() = std::move(payload);
  return response;
}

std::string EncodeEventV2(const http::Request& req, const AppTarget& target,
                          const RequestInfo& info) {
  auto text = [](std::string_view s) { return std::string(s); };
  Json headers = Json::object();
  Json cookies = Json::array();
  std::string host, user_agent;
  for (const Field& f : JoinedFields(req, ",")) {  // API Gateway joins with a comma
    std::string name = f.name;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "cookie") {
      std::string_view rest = f.value;
      while (!rest.empty()) {
        size_t semi = rest.find(';');
        std::string_view one = Trim(rest.substr(0, semi));
        if (!one.empty()) cookies.push_back(text(one));
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      }
      continue;
    }
    if (name == "host") host = f.value;
    if (name == "user-agent") user_agent = f.value;
    headers[name] = f.value;
  }
  std::string raw_path = target.raw_path.empty() ? "/" : target.raw_path;
  Json event = {{"version", "2.0"},
                {"routeKey", "$default"},
                {"rawPath", raw_path},
                {"rawQueryString", target.raw_query}};
  if (!cookies.empty()) event["cookies"] = std::move(cookies);
  event["headers"] = std::move(headers);
  if (!target.raw_query.empty()) {
    Json params = Json::object();
    for (const auto& [k, v] : http::ParseQuery(target.raw_query)) {
      if (params.contains(k)) {
        params[k] = params[k].get<std::string>() + "," + v;
      } else {
        params[k] = v;
      }
    }
    event["queryStringParameters"] = std::move(params);
  }
  std::string domain_prefix = host.substr(0, host.find('.'));
  event["requestContext"] = {{"accountId", "000000000000"},
                             {"apiId", "gust"},
                             {"domainName", host},
                             {"domainPrefix", domain_prefix},
                             {"http",
                              {{"method", text(req.method_string())},
                               {"path", raw_path},
                               {"protocol", req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1"},
                               {"sourceIp", info.remote_ip},
                               {"userAgent", user_agent}}},
                             {"requestId", info.request_id},
                             {"routeKey", "$default"},
                             {"stage", "$default"},
                             {"time", ClfTime(info.now_ms)},
                             {"timeEpoch", info.now_ms}};
  const std::string& body = req.body();
  if (!body.empty()) {
    bool text_body = IsValidUtf8(body);
    event["body"] = text_body ? body : Base64Encode(body);
    event["isBase64Encoded"] = !text_body;
  } else {
    event["isBase64Encoded"] = false;
  }
  return JsonDump(event);
}

Result<http::Response> DecodeEventV2Response(const std::string& payload) {
  Json doc = JsonParse(payload);
  if (doc.is_discarded()) return BadResponse("the function's result is not JSON");
  http::Response response;
  if (!doc.is_object() || !doc.contains("statusCode")) {
    // API Gateway's rule for a bare result: 200, the JSON as the body (a
    // string's contents for a string).
    response.result(beast_http::status::ok);
    response.set(beast_http::field::content_type, "application/json");
    response.body() = doc.is_string() ? doc.get<std::string>() : payload;
    return response;
  }
  const Json& sc = *JsonFind(doc, "statusCode");
  int64_t code = 0;
  if (sc.is_number_integer()) {
    JsonGetInt(doc, "statusCode", &code);
  } else if (sc.is_string()) {
    code = std::atoi(sc.get<std::string>().c_str());
  }
  if (code < 100 || code > 599) return BadResponse("statusCode " + JsonDump(sc) + " is not valid");
  response.result(static_cast<unsigned>(code));
  bool has_type = false;
  auto add = [&](const std::string& name, const std::string& value) -> Status {
    if (HasControlBytes(value) || HasControlBytes(name) || name.empty())
      return BadResponse("header '" + name + "' holds a control character");
    if (IsFramingHeader(name)) return Status::Ok();
    if (IEquals(name, "content-type")) has_type = true;
    response.insert(name, value);
    return Status::Ok();
  };
  if (const Json* headers = JsonFind(doc, "headers"); headers && headers->is_object()) {
    for (const auto& [name, value] : headers->items()) {
      GUST_RETURN_IF_ERROR(add(name, JsonText(value)));
    }
  }
  if (const Json* multi = JsonFind(doc, "multiValueHeaders"); multi && multi->is_object()) {
    for (const auto& [name, values] : multi->items()) {
      if (!values.is_array()) continue;
      for (const auto& v : values) GUST_RETURN_IF_ERROR(add(name, JsonText(v)));
    }
  }
  if (const Json* cookies = JsonFind(doc, "cookies"); cookies && cookies->is_array()) {
    for (const auto& c : *cookies) GUST_RETURN_IF_ERROR(add("Set-Cookie", JsonText(c)));
  }
  if (!has_type) response.set(beast_http::field::content_type, "application/json");
  bool base64 = false;
  if (JsonGetBool(doc, "isBase64Encoded", &base64) == JsonGot::kWrongType) {
    // API Gateway answers 502 for this too: "false" (a string) is not false.
    return BadResponse("isBase64Encoded must be a boolean, not " +
                       JsonDump(*JsonFind(doc, "isBase64Encoded")));
  }
  if (const Json* body = JsonFind(doc, "body"); body && !body->is_null()) {
    std::string text = JsonText(*body);
    if (base64) {
      auto decoded = Base64Decode(text);
      if (!decoded.ok()) return BadResponse("isBase64Encoded is true but body is not base64");
      text = std::move(decoded).value();
    }
    response.body() = std::move(text);
  }
  return response;
}

AppTarget ParseTarget(const http::Request& req) {
  AppTarget t;
  std::string_view target = req.target();
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (q != std::string_view::npos) t.raw_query = std::string(target.substr(q + 1));
  std::string_view host_app = HostApp(HostOf(req));
  if (!host_app.empty()) {
    t.app = std::string(host_app);
    t.raw_path = std::string(path);
    return t;
  }
  path.remove_prefix(kPathPrefix.size());
  size_t slash = path.find('/');
  t.app = std::string(path.substr(0, slash));
  t.script_name = std::string(kPathPrefix) + t.app;
  if (slash != std::string_view::npos) t.raw_path = std::string(path.substr(slash));
  return t;
}

bool IsWebRequest(const http::Request& req) {
  std::string_view target = req.target();
  if (target.size() > kPathPrefix.size() && target.compare(0, kPathPrefix.size(), kPathPrefix) == 0)
    return true;
  return !HostApp(HostOf(req)).empty();
}

}  // namespace gust::api

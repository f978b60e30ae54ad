#include "http/router.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/json_read.h"

namespace gust::http {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "/a/b/" -> {"a", "b"}; "/" -> {}. Views into `path`.
void SplitPath(std::string_view path, std::vector<std::string_view>* out) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out->push_back(path.substr(start));
      return;
    }
    out->push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

std::string DecodeQueryPart(std::string_view text) {
  if (text.find('+') == std::string_view::npos) return PercentDecode(text);
  std::string spaced(text);
  for (char& c : spaced) {
    if (c == '+') c = ' ';
  }
  return PercentDecode(spaced);
}

// A quoted JSON string; nlohmann escapes (and rejects invalid UTF-8 as U+FFFD).
std::string JsonString(std::string_view s) { return JsonDump(nlohmann::json(std::string(s))); }

void SendError(const Responder& responder, beast_http::status status, std::string_view type,
               std::string_view message, const std::string& allow) {
  std::string body = R"({"Type":"User","message":)" + JsonString(message) + "}";
  Response response = MakeResponse(status, std::move(body));
  response.set("X-Amzn-ErrorType", type);
  if (!allow.empty()) response.set(beast_http::field::allow, allow);
  responder.Send(std::move(response));
}

}  // namespace

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];  // invalid escapes are kept as they are
    }
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
                      u == '-' || u == '_' || u == '.' || u == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

std::multimap<std::string, std::string> ParseQuery(std::string_view query) {
  std::multimap<std::string, std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      out.emplace(DecodeQueryPart(pair), std::string());
    } else {
      out.emplace(DecodeQueryPart(pair.substr(0, eq)), DecodeQueryPart(pair.substr(eq + 1)));
    }
  }
  return out;
}

void Router::Add(beast_http::verb method, std::string_view pattern, RouteHandler handler) {
  std::vector<std::string_view> parts;
  SplitPath(pattern, &parts);
  Entry entry{method, {}, std::move(handler)};
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view part = parts[i];
    Segment segment{Segment::Kind::kLiteral, std::string(part)};
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      std::string_view name = part.substr(1, part.size() - 2);
      if (!name.empty() && name.back() == '+') {
        GUST_CHECK(i + 1 == parts.size(), "{name+} must be the last segment of a route");
        segment = {Segment::Kind::kRest, std::string(name.substr(0, name.size() - 1))};
      } else {
        segment = {Segment::Kind::kParam, std::string(name)};
      }
    }
    entry.segments.push_back(std::move(segment));
  }
  // A second route of the same method and shape (a trailing slash and the
  // parameters' names aside) could never be reached: the first one wins.
  auto same_shape = [&entry](const Entry& other) {
    return other.method == entry.method &&
           std::equal(other.segments.begin(), other.segments.end(), entry.segments.begin(),
                      entry.segments.end(), [](const Segment& a, const Segment& b) {
                        return a.kind == b.kind &&
                               (a.kind != Segment::Kind::kLiteral || a.text == b.text);
                      });
  };
  GUST_CHECK(std::none_of(entries_.begin(), entries_.end(), same_shape),
             ("route registered twice: " + std::string(beast_http::to_string(entry.method)) + " " +
              std::string(pattern))
                 .c_str());
  entries_.push_back(std::move(entry));
}

bool Router::Match(const Entry& entry, const std::vector<std::string_view>& path,
                   std::string_view raw_path, RouteMatch* match) {
  const auto& segs = entry.segments;
  const bool has_rest = !segs.empty() && segs.back().kind == Segment::Kind::kRest;
  if (has_rest ? path.size() < segs.size() : path.size() != segs.size()) return false;
  // Literals first: cheap rejection before any decoding or allocation.
  for (size_t i = 0; i < segs.size(); ++i) {
    switch (segs[i].kind) {
      case Segment::Kind::kLiteral:
        if (path[i] != segs[i].text) return false;
        break;
      case Segment::Kind::kParam:
      case Segment::Kind::kRest:
        if (path[i].empty()) return false;
        break;
    }
  }
  if (match == nullptr) return true;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (segs[i].kind == Segment::Kind::kParam) {
      match->params[segs[i].text] = PercentDecode(path[i]);
    } else if (segs[i].kind == Segment::Kind::kRest) {
      // Everything from this segment on, slashes included (trailing one dropped).
      size_t offset = static_cast<size_t>(path[i].data() - raw_path.data());
      std::string_view rest = raw_path.substr(offset);
      if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
      match->params[segs[i].text] = PercentDecode(rest);
    }
  }
  return true;
}

void Router::Route(Request&& request, Responder responder) const {
  std::string_view target = request.target();
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query =
      qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);

  std::vector<std::string_view> parts;
  parts.reserve(8);
  SplitPath(path, &parts);

  const Entry* found = nullptr;
  bool path_matched = false;
  for (const Entry& entry : entries_) {
    if (!Match(entry, parts, path, nullptr)) continue;
    path_matched = true;
    if (entry.method == request.method()) {
      found = &entry;
      break;
    }
  }

  RouteMatch match;
  match.query_all = ParseQuery(query);
  for (const auto& [key, value] : match.query_all) match.query[key] = value;  // last wins

  if (found != nullptr) {
    bool ok = Match(*found, parts, path, &match);
    GUST_CHECK(ok, "a route chosen by the index must match the path");
    found->handler(std::move(request), match, std::move(responder));
    return;
  }
  if (path_matched) {
    if (method_not_allowed_) return method_not_allowed_(std::move(request), match, responder);
    std::string allow;
    for (const Entry& entry : entries_) {
      if (!Match(entry, parts, path, nullptr)) continue;
      std::string_view name = beast_http::to_string(entry.method);
      if (allow.find(name) != std::string::npos) continue;
      if (!allow.empty()) allow += ", ";
      allow += name;
    }
    std::string message = "method " + std::string(request.method_string()) +
                          " is not allowed for " + std::string(path);
    return SendError(responder, beast_http::status::method_not_allowed, "MethodNotAllowedException",
                     message, allow);
  }
  if (not_found_) return not_found_(std::move(request), match, responder);
  std::string message =
      "no route for " + std::string(request.method_string()) + " " + std::string(path);
  SendError(responder, beast_http::status::not_found, "UnknownOperationException", message, "");
}

}  // namespace gust::http

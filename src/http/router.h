// Router: maps (method, path) to a handler with named path parameters.
// Patterns are literal segments and {name} segments that match one non-empty
// segment ("/2015-03-31/functions/{name}/invocations"); a trailing {name+}
// matches the rest of the path (one or more segments, slashes kept). Literal
// segments compare byte-wise against the raw path; parameters are
// percent-decoded ("+" stays "+" in paths). A single trailing slash is
// ignored on both sides ("/functions/" matches "/functions"). Routes are tried
// in the order added; the first match wins. The query string is parsed into
// `query` (last value wins; all values in `query_all`), where "+" means space.
//
// When no pattern matches the path: not_found (default: 404 JSON body). When
// a pattern matches but not for this method: method_not_allowed (default: 405
// JSON body with an Allow header).
//
// Thread-safety: build before serving; Route() is then const and thread-safe.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.h"

namespace gust::http {

struct RouteMatch {
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> query;
  std::multimap<std::string, std::string> query_all;
};

using RouteHandler = std::function<void(Request&&, const RouteMatch&, Responder)>;

class Router {
 public:
  void Add(beast_http::verb method, std::string_view pattern, RouteHandler handler);
  // Dispatches; calls not_found (404) or method_not_allowed (405) when nothing matches.
  void Route(Request&& request, Responder responder) const;
  void SetNotFound(RouteHandler handler) { not_found_ = std::move(handler); }
  void SetMethodNotAllowed(RouteHandler handler) { method_not_allowed_ = std::move(handler); }

 private:
  struct Segment {
    enum class Kind { kLiteral, kParam, kRest } kind;
    std::string text;  // the literal, or the parameter's name
  };
  struct Entry {
    beast_http::verb method;
    std::vector<Segment> segments;
    RouteHandler handler;
  };
  // Fills params (decoded) when `path` matches `entry`.
  static bool Match(const Entry& entry, const std::vector<std::string_view>& path,
                    std::string_view raw_path, RouteMatch* match);
  std::vector<Entry> entries_;
  RouteHandler not_found_;
  RouteHandler method_not_allowed_;
};

std::string PercentDecode(std::string_view text);
std::string PercentEncode(std::string_view text);
// Splits "a=1&b=x%20y" into pairs.
std::multimap<std::string, std::string> ParseQuery(std::string_view query);

}  // namespace gust::http

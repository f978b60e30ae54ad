#include "api/cluster_logs.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <future>
#include <memory>

#include <nlohmann/json.hpp>

#include "api/lambda_shapes.h"
#include "api/run_guarded.h"
#include "common/json_read.h"
#include "engine/log_sink.h"
#include "http/client.h"
#include "http/router.h"

namespace gust::api {

namespace {

// A node that takes longer than this is named in a warning: `gust logs` should not hang on
// one frozen node.
constexpr auto kLogCallTimeout = std::chrono::seconds(3);
// Each node's part of one read (LogSink::Read's bound).
constexpr size_t kPartBytes = 1 << 20;

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

int64_t QueryInt(const http::RouteMatch& m, const char* key) {
  auto it = m.query.find(key);
  uint64_t v = 0;
  if (it == m.query.end() || !ParseU64(it->second, &v)) return 0;
  return static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX));
}

// What one node gave for one read.
struct Part {
  std::string node;
  std::string url;
  std::string text;
  uint64_t next_offset = 0;
  Status status;
};

Part AskNode(const engine::Peer& peer, const PeerLink& link, const std::string& function,
             int64_t since_ms, uint64_t offset) {
  Part part;
  part.node = peer.name;
  part.url = peer.url;
  part.next_offset = offset;
  auto client = ConnectPeer(link, peer.url);
  if (!client.ok()) {
    part.status = client.status();
    return part;
  }
  auto got = (*client)->Do(http::beast_http::verb::get,
                           "/v1/cluster/logs/" + http::PercentEncode(function) + "?since=" +
                               std::to_string(since_ms) + "&offset=" + std::to_string(offset),
                           "", {}, kLogCallTimeout);
  if (!got.ok()) {
    part.status = got.status();
    return part;
  }
  if (got->status != 200) {
    part.status = Status::Unavailable("it answered " + std::to_string(got->status) + ": " +
                                      got->body.substr(0, 200));
    return part;
  }
  // Another node's answer is outside input: checked field by field.
  nlohmann::json doc = JsonParse(got->body);
  std::string text;
  int64_t next = 0;
  if (!doc.is_object() || JsonGetString(doc, "text", &text) != JsonGot::kOk ||
      JsonGetInt(doc, "next_offset", &next) != JsonGot::kOk || next < 0) {
    part.status = Status::Unavailable("its answer has no text and next_offset");
    return part;
  }
  part.text = std::move(text);
  part.next_offset = static_cast<uint64_t>(next);
  return part;
}

}  // namespace

ClusterLogs::ClusterLogs(boost::asio::thread_pool& workers, const engine::ClusterView& view,
                         NodeStore& nodes, std::string self, PeerLink link, std::string log_dir)
    : workers_(workers),
      view_(view),
      nodes_(nodes),
      self_(std::move(self)),
      link_(std::move(link)),
      log_dir_(std::move(log_dir)) {}

void ClusterLogs::Register(http::Router& router) {
  router.Add(http::beast_http::verb::get, "/v1/cluster/logs/{name}",
             OnWorkers(workers_, this, &ClusterLogs::NodeLines));
}

http::Response ClusterLogs::NodeLines(const http::Request& /*req*/, const http::RouteMatch& m) {
  auto ref = ParseFunctionRef(m.params.at("name"));
  if (!ref.ok()) return ErrorResponse({400, "ValidationException", ref.status().message()});
  auto chunk = engine::LogSink::Read(log_dir_, ref->name, QueryInt(m, "since"),
                                     static_cast<uint64_t>(QueryInt(m, "offset")), kPartBytes);
  if (!chunk.ok()) return ErrorResponse(FromStatus(chunk.status()));
  return JsonResponse(200, {{"text", chunk->text}, {"next_offset", chunk->next_offset}});
}

Result<std::map<std::string, uint64_t>> ClusterLogs::ParseCursor(const std::string& cursor) {
  std::map<std::string, uint64_t> out;
  std::string_view rest = cursor;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    size_t eq = item.find('=');
    uint64_t offset = 0;
    if (eq == 0 || eq == std::string_view::npos || !ParseU64(item.substr(eq + 1), &offset)) {
      return Status::InvalidArgument("cursor '" + cursor +
                                     "' is not a log cursor (node=offset,...): pass back the "
                                     "cursor of the previous answer");
    }
    out[std::string(item.substr(0, eq))] = offset;
  }
  return out;
}

std::string ClusterLogs::FormatCursor(const std::map<std::string, uint64_t>& offsets) {
  std::string out;
  for (const auto& [node, offset] : offsets) {
    if (!out.empty()) out += ',';
    out += node + '=' + std::to_string(offset);
  }
  return out;
}

std::string ClusterLogs::MergeByTime(
    const std::vector<std::pair<std::string, std::string>>& parts) {
  struct Line {
    int64_t ms;
    size_t part;
    std::string_view stamp, text;
  };
  std::vector<Line> lines;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view rest = parts[i].second;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      size_t tab = line.find('\t');
      if (tab == std::string_view::npos) continue;  // not an entry (LogSink writes none)
      int64_t ms = 0;
      std::from_chars(line.data(), line.data() + tab, ms);
      lines.push_back({ms, i, line.substr(0, tab), line.substr(tab + 1)});
    }
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.ms < b.ms; });
  std::string out;
  for (const Line& l : lines) {
    out.append(l.stamp).append("\t").append(parts[l.part].first).append("\t").append(l.text);
    out += '\n';
  }
  return out;
}

Result<ClusterLogs::Merged> ClusterLogs::Read(const std::string& function, int64_t since_ms,
                                              const std::string& cursor) {
  GUST_ASSIGN_OR_RETURN(auto offsets, ParseCursor(cursor));
  Merged merged;
  std::vector<std::future<Part>> asked;
  engine::ClusterView::Snapshot peers = view_.Get();
  if (peers == nullptr) {
    // No beat has read the membership yet: read it here (a worker, not the engine thread).
    GUST_ASSIGN_OR_RETURN(std::vector<NodeRow> rows, nodes_.List());
    peers = std::make_shared<const std::vector<engine::Peer>>(engine::PeersFromRows(rows));
  }
  for (const engine::Peer& peer : *peers) {
    if (peer.name == self_) continue;
    if (peer.up || peer.draining) {
      asked.push_back(std::async(std::launch::async, AskNode, peer, std::cref(link_), function,
                                 since_ms, offsets[peer.name]));
    } else if (peer.dead) {
      // Its lines exist but cannot be read now; its offset is kept for when it is back. A
      // node that left in order (stopped) is not named: it is gone by intent.
      merged.warnings.push_back("node " + peer.name + " (" + peer.url +
                                ") is dead (no heartbeat within its lease): its lines are "
                                "not included");
    }
  }
  std::vector<std::pair<std::string, std::string>> parts;
  auto own = engine::LogSink::Read(log_dir_, function, since_ms, offsets[self_], kPartBytes);
  if (!own.ok()) return own.status();
  offsets[self_] = own->next_offset;
  merged.own_next_offset = own->next_offset;
  parts.emplace_back(self_, std::move(own->text));
  for (auto& f : asked) {
    Part part = f.get();
    if (!part.status.ok()) {
      merged.warnings.push_back("node " + part.node + " (" + part.url + ") did not answer (" +
                                part.status.message() + "): its lines are not included");
      continue;
    }
    offsets[part.node] = part.next_offset;
    parts.emplace_back(part.node, std::move(part.text));
  }
  merged.text = MergeByTime(parts);
  merged.cursor = FormatCursor(offsets);
  return merged;
}

}  // namespace gust::api

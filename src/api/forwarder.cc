#include "api/forwarder.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <cctype>
#include <map>
#include <memory>
#include <set>

#include "api/lambda_shapes.h"
#include "http/client.h"

namespace gust::api {

namespace {

// Headers not passed on: the connection's own (hop-by-hop), the client's signature (the
// forward is signed again with the cluster's key) and what the HTTP client sets itself.
const std::set<std::string, std::less<>> kNotForwarded = {"authorization",
                                                          "connection",
                                                          "content-length",
                                                          "expect",
                                                          "host",
                                                          "keep-alive",
                                                          "proxy-connection",
                                                          "te",
                                                          "trailer",
                                                          "transfer-encoding",
                                                          "upgrade",
                                                          "user-agent",
                                                          "x-amz-content-sha256",
                                                          "x-amz-date",
                                                          "x-amz-security-token",
                                                          kForwardedHeader};
// Answer headers not passed back: the connection's own; this node's server sets them.
const std::set<std::string, std::less<>> kNotReturned = {
    "connection", "content-length", "keep-alive", "transfer-encoding", "server", "date"};

std::string Lower(std::string out) {
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One kept-alive connection per node on each of the pool's threads.
http::Client* ClientFor(const std::string& url, const PeerLink& link,
                        std::chrono::milliseconds peer_silence, Status& error) {
  thread_local std::map<std::string, std::unique_ptr<http::Client>> clients;
  auto it = clients.find(url);
  if (it != clients.end()) return it->second.get();
  auto client = ConnectPeer(link, url);
  if (!client.ok()) {
    error = client.status();
    return nullptr;
  }
  (*client)->SetPeerSilenceLimit(peer_silence);
  return clients.emplace(url, std::move(client).value()).first->second.get();
}

}  // namespace

Forwarder::Forwarder(boost::asio::io_context& io, engine::Invoker& invoker,
                     const engine::ClusterView& view, std::string self, PeerLink link,
                     std::chrono::milliseconds timeout, std::chrono::milliseconds peer_silence,
                     int threads)
    : io_(io),
      invoker_(invoker),
      view_(view),
      self_(std::move(self)),
      link_(std::move(link)),
      timeout_(timeout),
      peer_silence_(peer_silence),
      pool_(static_cast<size_t>(threads)) {}

Forwarder::~Forwarder() { Shutdown(); }

void Forwarder::Shutdown() {
  if (shut_down_.exchange(true)) return;
  pool_.stop();
  pool_.join();
}

bool Forwarder::IsForwarded(const http::Request& req) {
  return req.find(kForwardedHeader) != req.end();
}

bool Forwarder::Forward(http::Request& req, const std::string& function,
                        const std::string& qualifier, const http::Responder& responder,
                        RunHere run_here) {
  if (shut_down_ || IsForwarded(req)) return false;
  auto here = invoker_.WarmHere(function, qualifier);
  engine::ClusterView::Snapshot peers = view_.Get();
  // A draining node sends even a call it has a warm sandbox for to an up node.
  const bool draining = peers != nullptr && engine::IsDraining(*peers, self_);
  if (!here.ok() || (here->idle > 0 && !draining)) return false;
  if (peers == nullptr) return false;
  std::vector<Node> nodes;
  for (const engine::Peer* p : draining
                                   ? engine::ChooseAway(*peers, self_, function, here->version)
                                   : engine::ChooseNodes(*peers, self_, function, here->version)) {
    nodes.push_back({p->name, p->url});
  }
  if (nodes.empty()) return false;
  Send(req, std::move(nodes), responder, std::move(run_here));
  return true;
}

bool Forwarder::ForwardAway(http::Request& req, const http::Responder& responder,
                            RunHere run_here) {
  if (shut_down_ || IsForwarded(req)) return false;
  engine::ClusterView::Snapshot peers = view_.Get();
  if (peers == nullptr || !engine::IsDraining(*peers, self_)) return false;
  std::vector<Node> nodes;
  // No function version to prefer a warm node for: the lowest load per core first.
  for (const engine::Peer* p : engine::ChooseAway(*peers, self_, "", "")) {
    nodes.push_back({p->name, p->url});
  }
  if (nodes.empty()) return false;
  Send(req, std::move(nodes), responder, std::move(run_here));
  return true;
}

bool Forwarder::ForwardTo(http::Request& req, const std::string& name,
                          const http::Responder& responder, RunHere run_here) {
  if (shut_down_ || IsForwarded(req) || name == self_) return false;
  engine::ClusterView::Snapshot peers = view_.Get();
  if (peers == nullptr) return false;
  for (const engine::Peer& p : *peers) {
    if (p.name != name) continue;
    if (!p.up && !p.draining) return false;
    Send(req, {{p.name, p.url}}, responder, std::move(run_here));
    return true;
  }
  return false;
}

void Forwarder::Send(http::Request& req, std::vector<Node> nodes, const http::Responder& responder,
                     RunHere run_here) {
  boost::asio::post(pool_, [this, req = std::move(req), nodes = std::move(nodes), responder,
                            run_here = std::move(run_here)]() mutable {
    Exchange(std::move(req), nodes, std::move(responder), std::move(run_here));
  });
}

void Forwarder::Exchange(http::Request req, const std::vector<Node>& nodes,
                         http::Responder responder, RunHere run_here) {
  std::map<std::string, std::string> headers;
  for (const auto& field : req) {
    std::string name = Lower(std::string(field.name_string()));
    if (kNotForwarded.count(name) == 0) headers[name] = std::string(field.value());
  }
  headers[kForwardedHeader] = self_;
  const std::string target(req.target());
  auto answer = [this, responder](http::Response response) {
    boost::asio::post(io_, [responder, response = std::move(response)]() mutable {
      responder.Send(std::move(response));
    });
  };
  for (const Node& node : nodes) {
    Status error;
    http::Client* client = ClientFor(node.url, link_, peer_silence_, error);
    if (client == nullptr) {
      spdlog::warn("cluster: cannot forward to node {} at {}: {}", node.name, node.url,
                   error.ToString());
      continue;
    }
    auto got = client->Do(req.method(), target, req.body(), headers, timeout_);
    if (got.ok()) {
      http::Response response(static_cast<http::beast_http::status>(got->status), 11);
      for (const auto& [name, value] : got->headers) {
        if (kNotReturned.count(name) == 0) response.insert(name, value);
      }
      response.body() = std::move(got->body);
      answer(std::move(response));
      return;
    }
    if (client->LastRequestSent()) {
      // It may have run: never run it again (docs/CLUSTER.md).
      answer(ErrorResponse({502, "ServiceException",
                            "the call was forwarded to cluster node " + node.name + " (" +
                                node.url + ") and failed there: " + got.status().message()}));
      return;
    }
    spdlog::info("cluster: node {} could not be reached ({}); trying the next", node.name,
                 got.status().message());
  }
  // No node took it, so nothing ran: run it here, marked so it is not forwarded again.
  req.set(kForwardedHeader, self_);
  boost::asio::post(io_, [req = std::move(req), run_here = std::move(run_here)]() mutable {
    run_here(std::move(req));
  });
}

}  // namespace gust::api

// PeerLink: how this node calls another node of its cluster (docs/CLUSTER.md,
// "Node to node"). Every call is signed with the cluster's credential (the
// receiving node accepts its /v1/cluster/... routes and the forwarded mark on
// that key only), and an https:// peer's certificate is checked against
// tls.ca_file: `gust up`'s $GUST_CA_BUNDLE, else $AWS_CA_BUNDLE, else the
// system's CAs (EngineConfig::cluster_ca_file), the same trust the gust CLI
// and boto3 use for an engine.
//
// Thread-safety: a PeerLink is a value, copied into each user; the clients
// ConnectPeer returns are each for one thread at a time (http::Client).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "http/client.h"
#include "http/sigv4.h"

namespace gust::api {

struct PeerLink {
  http::sigv4::Credentials key;
  http::ClientTls tls;
};

// A client for the node at url (its advertised URL) that signs with link.key.
// InvalidArgument for a URL of another scheme or an unreadable link.tls.ca_file;
// it does not connect.
Result<std::unique_ptr<http::Client>> ConnectPeer(const PeerLink& link, const std::string& url);

}  // namespace gust::api

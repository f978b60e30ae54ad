#include "api/peer_link.h"

namespace gust::api {

Result<std::unique_ptr<http::Client>> ConnectPeer(const PeerLink& link, const std::string& url) {
  GUST_ASSIGN_OR_RETURN(auto client, http::Client::Create(url, link.tls));
  client->SetCredentials(link.key);
  return client;
}

}  // namespace gust::api

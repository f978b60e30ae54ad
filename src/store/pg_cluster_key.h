// The cluster's credential as nodes read it (docs/CLUSTER.md, "Security"): the key pair
// `gust cluster init` stored in `cluster_credentials` (node_store.h, InitPgCluster), which
// nodes sign engine-to-engine requests with and accept them by.
//
// Errors: NotFound when the cluster has no credential (init was not run); Unavailable
// naming host and port when the database cannot be reached.
// Thread-safety: a function of its own connection; call it from any thread.
#pragma once

#include <string>
#include <utility>

#include "common/status.h"

namespace gust {

// {access key id, secret access key}: the cluster's first credential.
Result<std::pair<std::string, std::string>> ReadPgClusterCredential(const std::string& conninfo);

}  // namespace gust

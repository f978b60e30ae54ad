#include "store/pg_cluster_key.h"

#include "store/pg_util.h"

namespace gust {

Result<std::pair<std::string, std::string>> ReadPgClusterCredential(const std::string& conninfo) {
  GUST_ASSIGN_OR_RETURN(auto db, pg::Connection::Open(conninfo, "cluster database"));
  GUST_ASSIGN_OR_RETURN(
      pg::Rows key,
      db->Exec("SELECT access_key_id, secret_access_key FROM cluster_credentials "
               "ORDER BY created_at LIMIT 1"));
  if (key.empty()) {
    return Status::NotFound("the cluster at " + pg::DescribeConninfo(conninfo) +
                            " has no credential for its nodes: run `gust cluster init` on it");
  }
  return std::make_pair(key.Text(0, 0), key.Text(0, 1));
}

}  // namespace gust

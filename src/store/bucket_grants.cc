#include "store/bucket_grants.h"

#include <algorithm>
#include <map>

#include "store/object_store.h"

namespace gust {

Result<BucketGrant> ParseBucketGrant(std::string_view text) {
  BucketGrant g;
  std::string_view name = text;
  if (name.ends_with(kReadOnlySuffix)) {
    g.read_only = true;
    name.remove_suffix(kReadOnlySuffix.size());
  }
  if (!ValidBucketName(name)) {
    return Status::InvalidArgument(
        "bucket grant '" + std::string(text.substr(0, 80)) +
        "' is not NAME or NAME:ro with a valid bucket name (3-63 lowercase letters, digits, "
        "dots and hyphens, starting and ending with a letter or digit)");
  }
  g.bucket = std::string(name);
  return g;
}

Result<BucketGrants> ParseBucketGrants(const std::vector<std::string>& texts) {
  std::map<std::string, bool> read_only;  // by bucket: sorted, one each
  for (const std::string& text : texts) {
    GUST_ASSIGN_OR_RETURN(BucketGrant g, ParseBucketGrant(text));
    auto [it, inserted] = read_only.emplace(g.bucket, g.read_only);
    if (!inserted) it->second = it->second && g.read_only;  // the wider grant wins
  }
  BucketGrants out;
  for (const auto& [bucket, ro] : read_only) out.push_back({bucket, ro});
  return out;
}

std::string FormatBucketGrant(const BucketGrant& grant) {
  return grant.read_only ? grant.bucket + std::string(kReadOnlySuffix) : grant.bucket;
}

std::vector<std::string> FormatBucketGrants(const BucketGrants& grants) {
  std::vector<std::string> out;
  for (const BucketGrant& g : grants) out.push_back(FormatBucketGrant(g));
  return out;
}

std::string JoinBucketGrants(const BucketGrants& grants) {
  std::string out;
  for (const BucketGrant& g : grants) {
    if (!out.empty()) out += ',';
    out += FormatBucketGrant(g);
  }
  return out;
}

BucketGrants SplitBucketGrants(std::string_view text) {
  BucketGrants out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    auto g = ParseBucketGrant(text.substr(0, comma));
    if (g.ok()) out.push_back(std::move(*g));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

BucketAccess AccessTo(const BucketGrants& grants, std::string_view bucket) {
  BucketAccess best = BucketAccess::kNone;
  for (const BucketGrant& g : grants) {
    if (g.bucket != bucket) continue;
    if (!g.read_only) return BucketAccess::kReadWrite;
    best = BucketAccess::kRead;
  }
  return best;
}

std::optional<BucketGrant> FirstWidening(const BucketGrants& wanted, const BucketGrants& held) {
  for (const BucketGrant& g : wanted) {
    BucketAccess have = AccessTo(held, g.bucket);
    if (have == BucketAccess::kNone || (have == BucketAccess::kRead && !g.read_only)) return g;
  }
  return std::nullopt;
}

}  // namespace gust

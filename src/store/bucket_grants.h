// Bucket grants: which buckets of the object store (object_store.h) a sandbox
// may use through the sandbox channel (api/channel_api.h; issue 16,
// docs/STORAGE.md "From a function"). A map job carries its grants (its
// header's "Buckets"), a function its configuration's (GustBuckets,
// `gust deploy --bucket`).
//
// A grant is written "NAME" (read and write) or "NAME:ro" (read only); NAME
// follows S3's bucket naming rules as the object store checks them
// (ValidBucketName). A list may name a bucket twice: the wider grant wins.
// Parsing fails with InvalidArgument naming the bad entry; nothing here
// touches the store (a granted bucket need not exist: CreateBucket is a write
// to it).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gust {

struct BucketGrant {
  std::string bucket;
  bool read_only = false;
  bool operator==(const BucketGrant&) const = default;
};
using BucketGrants = std::vector<BucketGrant>;

enum class BucketAccess { kNone, kRead, kReadWrite };

// The suffix of a read-only grant.
inline constexpr std::string_view kReadOnlySuffix = ":ro";

// "NAME" or "NAME:ro".
Result<BucketGrant> ParseBucketGrant(std::string_view text);
// A list of grants, merged (one per bucket, the widest) and sorted by name.
Result<BucketGrants> ParseBucketGrants(const std::vector<std::string>& texts);
// Back to text: "NAME" or "NAME:ro", one per grant.
std::string FormatBucketGrant(const BucketGrant& grant);
std::vector<std::string> FormatBucketGrants(const BucketGrants& grants);
// Comma-separated, for an internal header (bucket names hold no commas).
std::string JoinBucketGrants(const BucketGrants& grants);
// The inverse of JoinBucketGrants; malformed entries are dropped (the text is
// the engine's own).
BucketGrants SplitBucketGrants(std::string_view text);

// What grants allow on bucket.
BucketAccess AccessTo(const BucketGrants& grants, std::string_view bucket);
// The first grant of `wanted` that `held` does not cover (a bucket held not at
// all, or held read-only and wanted read-write); nullopt when held covers all.
std::optional<BucketGrant> FirstWidening(const BucketGrants& wanted, const BucketGrants& held);

}  // namespace gust

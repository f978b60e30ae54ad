// BlobStore: content-addressed storage of immutable byte strings (code zips,
// and later pickled map functions and results). The key is the lowercase hex
// SHA-256 of the content, so a Put of existing content is a no-op.
//
// Thread-safety: safe from any thread. Puts are atomic: a reader never sees a
// partially written blob (write to a temp file, fsync, rename).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gust {

std::string Sha256Hex(std::string_view bytes);

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Stores bytes; returns their digest.
  virtual Result<std::string> Put(std::string_view bytes) = 0;
  virtual Result<std::string> Get(const std::string& digest) = 0;
  virtual bool Contains(const std::string& digest) = 0;
  // A local file path holding the blob (valid while the blob exists).
  virtual Result<std::string> PathOf(const std::string& digest) = 0;
  virtual Status Remove(const std::string& digest) = 0;
};

// Blobs as files under root/aa/bbbb... (root is created if missing).
Result<std::unique_ptr<BlobStore>> OpenFileBlobStore(const std::string& root);

// Blobs in PostgreSQL (cluster mode, docs/CLUSTER.md: a bytea row per digest) with a file
// cache under cache_root (a file store as above): a node fetches a digest it lacks once, and
// PathOf is always a local file. Get checks a fetched blob against its digest (Internal if the
// row is corrupt). Remove deletes the row and this node's copy; other nodes' cached copies
// stay until they remove them (contents are immutable, so a cached copy is never stale).
// Connection errors as OpenPgMetadataStore's (metadata_store.h).
Result<std::unique_ptr<BlobStore>> OpenPgBlobStore(const std::string& conninfo,
                                                   const std::string& cache_root);

}  // namespace gust

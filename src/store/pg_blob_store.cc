// PgBlobStore: BlobStore over PostgreSQL's `blobs` table (pg_schema.h, migration 3) with a
// FileBlobStore as this node's cache. The cache also validates digests (InvalidArgument for
// anything else, before PostgreSQL is asked) and provides PathOf's local file.
#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/blob_store.h"
#include "store/pg_schema.h"
#include "store/pg_util.h"

namespace gust {
namespace {

using pg::Params;
using pg::Rows;

Status NotFound(const std::string& digest) { return Status::NotFound("blob not found: " + digest); }

class PgBlobStore : public BlobStore {
 public:
  PgBlobStore(std::unique_ptr<pg::Connection> db, std::unique_ptr<BlobStore> cache)
      : db_(std::move(db)), cache_(std::move(cache)) {}

  Result<std::string> Put(std::string_view bytes) override {
    std::string digest = Sha256Hex(bytes);
    {
      MutexLock lock(&mu_);
      // Asking first spares sending the bytes again (bundles are often MBs).
      GUST_ASSIGN_OR_RETURN(
          Rows have, db_->Exec("SELECT 1 FROM blobs WHERE digest = $1", Params().Add(digest)));
      if (have.empty()) {
        GUST_RETURN_IF_ERROR(db_->Exec("INSERT INTO blobs(digest, bytes) VALUES ($1, $2) "
                                       "ON CONFLICT DO NOTHING",
                                       Params().Add(digest).AddBytes(bytes))
                                 .status());
      }
    }
    return cache_->Put(bytes);
  }

  Result<std::string> Get(const std::string& digest) override {
    GUST_RETURN_IF_ERROR(Fetch(digest));
    return cache_->Get(digest);
  }

  bool Contains(const std::string& digest) override {
    if (cache_->Contains(digest)) return true;
    if (cache_->PathOf(digest).status().code() == Code::kInvalidArgument) return false;
    MutexLock lock(&mu_);
    auto have = db_->Exec("SELECT 1 FROM blobs WHERE digest = $1", Params().Add(digest));
    return have.ok() && !have->empty();
  }

  Result<std::string> PathOf(const std::string& digest) override {
    GUST_RETURN_IF_ERROR(Fetch(digest));
    return cache_->PathOf(digest);
  }

  Status Remove(const std::string& digest) override {
    Status cached = cache_->Remove(digest);
    if (cached.code() == Code::kInvalidArgument) return cached;
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows del,
                          db_->Exec("DELETE FROM blobs WHERE digest = $1", Params().Add(digest)));
    if (del.affected() == 0 && !cached.ok()) return NotFound(digest);
    return Status::Ok();
  }

 private:
  // Brings the blob into the cache if it is not there: OK when it is there after.
  Status Fetch(const std::string& digest) {
    Result<std::string> path = cache_->PathOf(digest);
    if (path.ok() || path.status().code() != Code::kNotFound) return path.status();
    std::string bytes;
    {
      MutexLock lock(&mu_);
      GUST_ASSIGN_OR_RETURN(Rows rows, db_->ExecBinary("SELECT bytes FROM blobs WHERE digest = $1",
                                                       Params().Add(digest)));
      if (rows.empty()) return NotFound(digest);
      bytes = rows.Bytes(0, 0);
    }
    if (Sha256Hex(bytes) != digest) {
      return Status::Internal("blob " + digest + " in PostgreSQL does not match its digest");
    }
    return cache_->Put(bytes).status();
  }

  Mutex mu_;
  std::unique_ptr<pg::Connection> db_ GUARDED_BY(mu_);
  const std::unique_ptr<BlobStore> cache_;  // thread-safe itself
};

}  // namespace

Result<std::unique_ptr<BlobStore>> OpenPgBlobStore(const std::string& conninfo,
                                                   const std::string& cache_root) {
  GUST_ASSIGN_OR_RETURN(auto cache, OpenFileBlobStore(cache_root));
  GUST_ASSIGN_OR_RETURN(auto db, pg_schema::Connect(conninfo, "blob store"));
  return std::unique_ptr<BlobStore>(std::make_unique<PgBlobStore>(std::move(db), std::move(cache)));
}

}  // namespace gust

// PgMapJobStore: MapJobStore over PostgreSQL's map_jobs, map_job_inputs and map_job_results
// (pg_schema.h, migration 8). Inputs are stored in pieces of many tasks (a row per task would
// cost a 100,000-task job 100,000 index entries for data read back only on a takeover); results
// one row per task, so that a reader after seq N and a takeover's "which tasks are done" are
// index scans, inserted many rows a statement.
//
// Binary results (ExecBinary) select integers as ::text; such a column keeps its name, and
// ORDER BY a bare name sorts by the output column (as text: 1, 10, 2), hence the qualified
// names in those ORDER BYs.
#include <algorithm>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/map_job_store.h"
#include "store/pg_util.h"

namespace gust {
namespace {

using pg::Params;
using pg::Rows;

// An input piece holds tasks up to about this many bytes (a larger task is a piece alone):
// bounded statements, and a takeover's read of a 100 MB job in a few dozen rows.
constexpr size_t kPieceBytes = 4u << 20;
// Results a statement inserts: 4 parameters a row; PostgreSQL allows 65535 a statement.
constexpr size_t kResultsPerInsert = 1000;

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 4);
}

// Decodes a piece (u32 length + bytes per task, little endian) onto *tasks. A piece this
// store did not write (a torn or edited row) is Internal naming the job and piece.
Status DecodePiece(const std::string& id, int64_t piece, std::string_view bytes,
                   std::vector<std::string>* tasks) {
  while (!bytes.empty()) {
    if (bytes.size() < 4) {
      return Status::Internal("map job " + id + ": input piece " + std::to_string(piece) +
                              " ends inside a length");
    }
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i)
      n |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
    bytes.remove_prefix(4);
    if (n > bytes.size()) {
      return Status::Internal("map job " + id + ": input piece " + std::to_string(piece) +
                              " has a task of " + std::to_string(n) + " bytes with " +
                              std::to_string(bytes.size()) + " left");
    }
    tasks->emplace_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return Status::Ok();
}

Status NoJob(const std::string& id) { return Status::NotFound("no map job " + id); }

constexpr const char* kJobColumns =
    "SELECT id, function, options, owner, owner_epoch, state, tasks, created_ms, finished_ms, "
    "ttl_ms FROM map_jobs ";

MapJobRow ReadJob(const Rows& rows, int i) {
  MapJobRow job;
  job.id = rows.Text(i, 0);
  job.function = rows.Text(i, 1);
  job.options = rows.Text(i, 2);
  job.owner = rows.Text(i, 3);
  job.owner_epoch = rows.Int(i, 4);
  job.state = rows.Text(i, 5);
  job.tasks = rows.Int(i, 6);
  job.created_ms = rows.Int(i, 7);
  job.finished_ms = rows.Int(i, 8);
  job.ttl_ms = rows.Int(i, 9);
  return job;
}

class PgMapJobStore : public MapJobStore {
 public:
  explicit PgMapJobStore(std::unique_ptr<pg::Connection> db) : db_(std::move(db)) {}

  Status Create(const MapJobRow& job, const std::vector<std::string>& tasks) override {
    MutexLock lock(&mu_);
    return db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      GUST_ASSIGN_OR_RETURN(
          Rows ins,
          db_->Exec("INSERT INTO map_jobs (id, function, options, owner, owner_epoch, state, "
                    "tasks, created_ms, finished_ms, ttl_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "$8, $9, $10) ON CONFLICT DO NOTHING",
                    Params()
                        .Add(job.id)
                        .Add(job.function)
                        .Add(job.options)
                        .Add(job.owner)
                        .Add(job.owner_epoch)
                        .Add(job.state)
                        .Add(static_cast<int64_t>(tasks.size()))
                        .Add(job.created_ms)
                        .Add(job.finished_ms)
                        .Add(job.ttl_ms)));
      if (ins.affected() == 0) return Status::Conflict("map job " + job.id + " exists already");
      std::string piece;
      int64_t number = 0;
      size_t first = 0;
      for (size_t i = 0; i <= tasks.size(); ++i) {
        bool flush = i == tasks.size()
                         ? !piece.empty()
                         : !piece.empty() && piece.size() + 4 + tasks[i].size() > kPieceBytes;
        if (flush) {
          GUST_RETURN_IF_ERROR(db_->Exec("INSERT INTO map_job_inputs (job, piece, first_task, "
                                         "payloads) VALUES ($1, $2, $3, $4)",
                                         Params()
                                             .Add(job.id)
                                             .Add(number++)
                                             .Add(static_cast<int64_t>(first))
                                             .AddBytes(piece))
                                   .status());
          piece.clear();
          first = i;
        }
        if (i == tasks.size()) break;
        PutU32(&piece, static_cast<uint32_t>(tasks[i].size()));
        piece += tasks[i];
      }
      return Status::Ok();
    });
  }

  Result<MapJobRow> Get(const std::string& id) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows, db_->Exec((std::string(kJobColumns) + "WHERE id = $1").c_str(),
                                               Params().Add(id)));
    if (rows.empty()) return NoJob(id);
    return ReadJob(rows, 0);
  }

  Result<std::vector<std::string>> Inputs(const std::string& id) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows job,
                          db_->Exec("SELECT tasks FROM map_jobs WHERE id = $1", Params().Add(id)));
    if (job.empty()) return NoJob(id);
    GUST_ASSIGN_OR_RETURN(
        Rows rows, db_->ExecBinary("SELECT piece::text, payloads FROM map_job_inputs i WHERE job "
                                   "= $1 ORDER BY i.piece",
                                   Params().Add(id)));
    std::vector<std::string> tasks;
    tasks.reserve(static_cast<size_t>(job.Int(0, 0)));
    for (int i = 0; i < rows.size(); ++i) {
      GUST_RETURN_IF_ERROR(DecodePiece(id, rows.Int(i, 0), rows.Bytes(i, 1), &tasks));
    }
    if (static_cast<int64_t>(tasks.size()) != job.Int(0, 0)) {
      return Status::Internal("map job " + id + " has " + std::to_string(job.Int(0, 0)) +
                              " tasks but its stored inputs hold " + std::to_string(tasks.size()));
    }
    return tasks;
  }

  Status AppendResults(const std::string& id, const std::string& owner, int64_t epoch,
                       const std::vector<MapResultRow>& results) override {
    if (results.empty()) return Status::Ok();
    MutexLock lock(&mu_);
    return db_->InTransaction([&]() REQUIRES(mu_) -> Status {
      // FOR SHARE: a takeover (an UPDATE of this row) waits until this append commits.
      GUST_RETURN_IF_ERROR(Owned(id, owner, epoch, "FOR SHARE"));
      GUST_ASSIGN_OR_RETURN(Rows last,
                            db_->Exec("SELECT COALESCE(MAX(seq), 0) FROM map_job_results "
                                      "WHERE job = $1",
                                      Params().Add(id)));
      uint64_t expect = static_cast<uint64_t>(last.Int(0, 0)) + 1;
      for (size_t begin = 0; begin < results.size(); begin += kResultsPerInsert) {
        size_t end = std::min(results.size(), begin + kResultsPerInsert);
        std::string sql = "INSERT INTO map_job_results (job, seq, task, body) VALUES ";
        Params params;
        for (size_t i = begin; i < end; ++i) {
          const MapResultRow& r = results[i];
          // Readers resume after the last seq they saw: a gap would hide results for good.
          if (r.seq != expect++) {
            return Status::Conflict("map job " + id + ": result seq " + std::to_string(r.seq) +
                                    " appended where " + std::to_string(expect - 1) + " is next");
          }
          int base = params.size();
          sql += i == begin ? "(" : ", (";
          for (int k = 1; k <= 4; ++k) sql += (k == 1 ? "$" : ", $") + std::to_string(base + k);
          sql += ")";
          params.Add(id).Add(static_cast<int64_t>(r.seq)).Add(static_cast<int64_t>(r.task));
          params.AddBytes(r.body);
        }
        GUST_RETURN_IF_ERROR(db_->Exec(sql.c_str(), params).status());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<MapResultRow>> Results(const std::string& id, uint64_t after,
                                            size_t max_bytes) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows job,
                          db_->Exec("SELECT 1 FROM map_jobs WHERE id = $1", Params().Add(id)));
    if (job.empty()) return NoJob(id);
    // Pages of 1,000 rows, so that a reader wanting a few results of a large job reads few.
    std::vector<MapResultRow> out;
    size_t bytes = 0;
    for (;;) {
      GUST_ASSIGN_OR_RETURN(
          Rows rows, db_->ExecBinary("SELECT seq::text, task::text, body FROM map_job_results "
                                     "r WHERE job = $1 AND r.seq > $2 ORDER BY r.seq LIMIT 1000",
                                     Params().Add(id).Add(static_cast<int64_t>(after))));
      for (int i = 0; i < rows.size(); ++i) {
        MapResultRow r;
        r.seq = static_cast<uint64_t>(rows.Int(i, 0));
        r.task = static_cast<uint32_t>(rows.Int(i, 1));
        r.body = rows.Bytes(i, 2);
        if (!out.empty() && bytes + r.body.size() > max_bytes) return out;
        bytes += r.body.size();
        after = r.seq;
        out.push_back(std::move(r));
      }
      if (rows.size() < 1000) return out;
    }
  }

  Status Finish(const std::string& id, const std::string& owner, int64_t epoch,
                int64_t finished_ms) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows,
                          db_->Exec("UPDATE map_jobs SET state = 'done', finished_ms = $4 "
                                    "WHERE id = $1 AND owner = $2 AND owner_epoch = $3",
                                    Params().Add(id).Add(owner).Add(epoch).Add(finished_ms)));
    if (rows.affected() == 0) return Fenced(id, owner, epoch);
    return Status::Ok();
  }

  Result<bool> TakeOver(const std::string& id, const std::string& seen_owner, int64_t seen_epoch,
                        const std::string& owner, int64_t epoch) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec("UPDATE map_jobs SET owner = $4, owner_epoch = $5 "
                  "WHERE id = $1 AND owner = $2 AND owner_epoch = $3",
                  Params().Add(id).Add(seen_owner).Add(seen_epoch).Add(owner).Add(epoch)));
    if (rows.affected() == 1) return true;
    GUST_ASSIGN_OR_RETURN(Rows job,
                          db_->Exec("SELECT 1 FROM map_jobs WHERE id = $1", Params().Add(id)));
    if (job.empty()) return NoJob(id);
    return false;
  }

  Result<std::vector<MapJobRow>> Running() override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec((std::string(kJobColumns) + "WHERE state = 'running' ORDER BY id").c_str()));
    std::vector<MapJobRow> out;
    out.reserve(static_cast<size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadJob(rows, i));
    return out;
  }

  Status Delete(const std::string& id) override {
    MutexLock lock(&mu_);
    return db_->Exec("DELETE FROM map_jobs WHERE id = $1", Params().Add(id)).status();
  }

  Result<int64_t> DeleteExpired(int64_t now_ms) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows rows, db_->Exec("DELETE FROM map_jobs WHERE state = 'done' AND "
                                               "finished_ms + ttl_ms < $1",
                                               Params().Add(now_ms)));
    return rows.affected();
  }

 private:
  // Ok when (owner, epoch) own job `id` (locking its row as `lock_clause` says).
  Status Owned(const std::string& id, const std::string& owner, int64_t epoch,
               const char* lock_clause) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec((std::string("SELECT owner = $2 AND owner_epoch = $3 FROM map_jobs WHERE id = "
                               "$1 ") +
                   lock_clause)
                      .c_str(),
                  Params().Add(id).Add(owner).Add(epoch)));
    if (rows.empty()) return NoJob(id);
    if (!rows.Bool(0, 0)) return Fenced(id, owner, epoch);
    return Status::Ok();
  }

  Status Fenced(const std::string& id, const std::string& owner, int64_t epoch) REQUIRES(mu_) {
    GUST_ASSIGN_OR_RETURN(Rows now, db_->Exec("SELECT owner, owner_epoch FROM map_jobs WHERE "
                                              "id = $1",
                                              Params().Add(id)));
    if (now.empty()) return NoJob(id);
    return Status::Conflict("map job " + id + " is owned by " + now.Text(0, 0) + " (epoch " +
                            now.Text(0, 1) + "), not " + owner + " (epoch " +
                            std::to_string(epoch) + "): it was taken over");
  }

  Mutex mu_;
  std::unique_ptr<pg::Connection> db_ GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<MapJobStore>> OpenPgMapJobStore(const std::string& conninfo) {
  GUST_ASSIGN_OR_RETURN(auto db, pg::Connection::Open(conninfo, "cluster database"));
  return std::unique_ptr<MapJobStore>(std::make_unique<PgMapJobStore>(std::move(db)));
}

}  // namespace gust

// PgMapJobStore: MapJobStore over PostgreSQL's map_jobs, map_job_inputs and
// map_job_result_batches (pg_schema.h, migrations 8 and 10). Inputs are stored in pieces of
// many tasks (a row per task would cost a 100,000-task job 100,000 index entries for data read
// back only on a takeover); results one row per appended batch, for the same reason: a
// reader after seq N reads the batches whose last seq is past N and skips what it has.
//
// Binary results (ExecBinary) select integers as ::text; such a column keeps its name, and
// ORDER BY a bare name sorts by the output column (as text: 1, 10, 2), hence the qualified
// names in those ORDER BYs.
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
// Result batches a reader's query returns at most (each up to a journal append's size).
constexpr int kBatchesPerRead = 64;

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 4);
}

// Result batches use int4send's byte order (big-endian): migration 10 wrote its rows so.
void PutU32BigEndian(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * (3 - i))) & 0xff);
  out->append(b, 4);
}

uint32_t GetU32BigEndian(std::string_view bytes) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

// Decodes batch [first_seq, last_seq] of job id onto *out: its results after seq `after`
// while their bodies fit max_bytes (*bytes counts them; at least one result). Returns false
// once max_bytes stopped it. A batch this store did not write is Internal naming it.
Result<bool> DecodeBatch(const std::string& id, uint64_t first_seq, uint64_t last_seq,
                         std::string_view bytes, uint64_t after, size_t max_bytes, size_t* used,
                         std::vector<MapResultRow>* out) {
  auto torn = [&](const std::string& what) {
    return Status::Internal("map job " + id + ": stored result batch " + std::to_string(first_seq) +
                            ".." + std::to_string(last_seq) + " " + what);
  };
  uint64_t seq = first_seq;
  while (!bytes.empty()) {
    if (bytes.size() < 8) return torn("ends inside a result's head");
    uint32_t task = GetU32BigEndian(bytes);
    uint32_t n = GetU32BigEndian(bytes.substr(4));
    bytes.remove_prefix(8);
    if (n > bytes.size()) return torn("has a result longer than its bytes");
    if (seq > last_seq) return torn("holds more results than its seqs");
    if (seq > after) {
      if (!out->empty() && *used + n > max_bytes) return false;
      *used += n;
      out->push_back({seq, task, std::string(bytes.substr(0, n))});
    }
    bytes.remove_prefix(n);
    ++seq;
  }
  if (seq != last_seq + 1) return torn("holds fewer results than its seqs");
  return true;
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
    "ttl_ms, stored FROM map_jobs ";

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
  job.stored = rows.Int(i, 10);
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
    const uint64_t first = results.front().seq;
    std::string bodies;
    size_t size = 0;
    for (const MapResultRow& r : results) size += 8 + r.body.size();
    bodies.reserve(size);
    for (size_t i = 0; i < results.size(); ++i) {
      // Readers resume after the last seq they saw: a gap would hide results for good.
      if (results[i].seq != first + i) {
        return Status::InvalidArgument("map job " + id + ": result seq " +
                                       std::to_string(results[i].seq) + " follows seq " +
                                       std::to_string(results[i - 1].seq) + " in one append");
      }
      PutU32BigEndian(&bodies, results[i].task);
      PutU32BigEndian(&bodies, static_cast<uint32_t>(results[i].body.size()));
      bodies += results[i].body;
    }
    const auto last = static_cast<int64_t>(results.back().seq);
    MutexLock lock(&mu_);
    // One statement: the row's update checks owner, epoch and the next seq, and the batch is
    // inserted only if it matched (a takeover's update of the row waits for it, or wins).
    GUST_ASSIGN_OR_RETURN(
        Rows rows,
        db_->Exec("WITH j AS (UPDATE map_jobs SET stored = $5 WHERE id = $1 AND owner = $2 AND "
                  "owner_epoch = $3 AND stored = $4 RETURNING id) "
                  "INSERT INTO map_job_result_batches (job, first_seq, last_seq, bodies) "
                  "SELECT id, $4 + 1, $5, $6 FROM j",
                  Params()
                      .Add(id)
                      .Add(owner)
                      .Add(epoch)
                      .Add(static_cast<int64_t>(first - 1))
                      .Add(last)
                      .AddBytes(bodies)));
    if (rows.affected() == 1) return Status::Ok();
    GUST_ASSIGN_OR_RETURN(Rows now, db_->Exec("SELECT owner = $2 AND owner_epoch = $3, stored "
                                              "FROM map_jobs WHERE id = $1",
                                              Params().Add(id).Add(owner).Add(epoch)));
    if (now.empty()) return NoJob(id);
    if (!now.Bool(0, 0)) return Fenced(id, owner, epoch);
    return Status::Conflict("map job " + id + ": result seq " + std::to_string(first) +
                            " appended where " + std::to_string(now.Int(0, 1) + 1) + " is next");
  }

  Result<std::vector<MapResultRow>> Results(const std::string& id, uint64_t after,
                                            size_t max_bytes) override {
    MutexLock lock(&mu_);
    GUST_ASSIGN_OR_RETURN(Rows job,
                          db_->Exec("SELECT 1 FROM map_jobs WHERE id = $1", Params().Add(id)));
    if (job.empty()) return NoJob(id);
    // A few batches a query, so that a reader wanting a few results of a large job reads few.
    std::vector<MapResultRow> out;
    size_t bytes = 0;
    for (;;) {
      static const std::string kRead =
          "SELECT first_seq::text, last_seq::text, bodies FROM map_job_result_batches b WHERE "
          "job = $1 AND b.last_seq > $2 ORDER BY b.first_seq LIMIT " +
          std::to_string(kBatchesPerRead);
      GUST_ASSIGN_OR_RETURN(
          Rows rows,
          db_->ExecBinary(kRead.c_str(), Params().Add(id).Add(static_cast<int64_t>(after))));
      for (int i = 0; i < rows.size(); ++i) {
        auto last = static_cast<uint64_t>(rows.Int(i, 1));
        GUST_ASSIGN_OR_RETURN(bool whole,
                              DecodeBatch(id, static_cast<uint64_t>(rows.Int(i, 0)), last,
                                          rows.Bytes(i, 2), after, max_bytes, &bytes, &out));
        if (!whole) return out;
        after = last;
      }
      if (rows.size() < kBatchesPerRead) return out;
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

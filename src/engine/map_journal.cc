#include "engine/map_journal.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/json_read.h"
#include "common/run_guarded.h"

namespace gust::engine {

using nlohmann::json;

std::string EncodeSpec(const MapJobSpec& spec) {
  return JsonDump(json{{"task_timeout_s", spec.task_timeout_s},
                       {"retries", spec.retries},
                       {"chunksize", spec.chunksize},
                       {"concurrency", spec.concurrency},
                       {"straggler_factor", spec.straggler_factor},
                       {"ttl_s", spec.ttl_s},
                       {"buckets", FormatBucketGrants(spec.buckets)}});
}

Result<MapJobSpec> DecodeSpec(const std::string& function, const std::string& options) {
  json doc = json::parse(options, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::InvalidArgument("a map job's stored options are not a JSON object");
  }
  MapJobSpec spec;
  spec.function = function;
  int64_t n = 0;
  // Every field is the engine's own writing; one that does not read is named, not guessed.
  for (auto [key, out] : {std::pair<const char*, int*>{"task_timeout_s", &spec.task_timeout_s},
                          {"retries", &spec.retries},
                          {"chunksize", &spec.chunksize},
                          {"concurrency", &spec.concurrency},
                          {"ttl_s", &spec.ttl_s}}) {
    if (JsonGetInt(doc, key, &n) != JsonGot::kOk || n < 0 || n > (int64_t{1} << 30)) {
      return Status::InvalidArgument(std::string("a map job's stored options lack a valid ") + key);
    }
    *out = static_cast<int>(n);
  }
  if (JsonGetNumber(doc, "straggler_factor", &spec.straggler_factor) != JsonGot::kOk) {
    return Status::InvalidArgument("a map job's stored options lack a valid straggler_factor");
  }
  // A job recorded before grants existed has none.
  if (const json* buckets = JsonFind(doc, "buckets"); buckets != nullptr) {
    std::vector<std::string> texts;
    for (const json& b : buckets->is_array() ? *buckets : json::array()) {
      if (b.is_string()) texts.push_back(b.get<std::string>());
    }
    auto grants = ParseBucketGrants(texts);
    if (!buckets->is_array() || texts.size() != buckets->size() || !grants.ok()) {
      return Status::InvalidArgument("a map job's stored options lack valid buckets");
    }
    spec.buckets = std::move(*grants);
  }
  return spec;
}

MapJournal::MapJournal(boost::asio::io_context& io, MapJobStore& store, std::string self,
                       int64_t epoch, std::chrono::milliseconds store_interval)
    : io_(io),
      store_(store),
      self_(std::move(self)),
      epoch_(epoch),
      store_interval_(store_interval) {}

MapJournal::~MapJournal() { Shutdown(); }

void MapJournal::Create(const std::string& id, const MapJobSpec& spec,
                        std::vector<std::string> tasks, std::function<void(Status)> done) {
  if (stopped_) {
    boost::asio::post(io_, [done = std::move(done)] {
      done(Status::Unavailable("the engine is shutting down"));
    });
    return;
  }
  MapJobRow row;
  row.id = id;
  row.function = spec.function;
  row.options = EncodeSpec(spec);
  row.owner = self_;
  row.owner_epoch = epoch_.load();
  row.created_ms = NowEpochMs();
  row.ttl_ms = int64_t{spec.ttl_s} * 1000;
  PostGuarded(pool_, [this, row = std::move(row), tasks = std::move(tasks),
                      done = std::move(done)]() mutable {
    Status s = store_.Create(row, tasks);
    boost::asio::post(io_, [s, done = std::move(done)] { done(s); });
  });
}

void MapJournal::Append(const std::string& id, std::vector<MapResultRow> results,
                        std::function<void(Status)> done) {
  if (stopped_) return;
  PostGuarded(pool_, [this, id, results = std::move(results), done = std::move(done)]() mutable {
    Status s = store_.AppendResults(id, self_, epoch_.load(), results);
    boost::asio::post(io_, [s, done = std::move(done)] { done(s); });
  });
}

void MapJournal::Finish(const std::string& id, int64_t finished_ms) {
  if (stopped_) return;
  PostGuarded(pool_, [this, id, finished_ms] {
    Status s = store_.Finish(id, self_, epoch_.load(), finished_ms);
    if (!s.ok()) spdlog::warn("map job {}: recording it done: {}", id, s.ToString());
  });
}

void MapJournal::Delete(const std::string& id) {
  if (stopped_) return;
  PostGuarded(pool_, [this, id] {
    Status s = store_.Delete(id);
    if (!s.ok()) spdlog::warn("map job {}: deleting its stored state: {}", id, s.ToString());
  });
}

void MapJournal::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  pool_.join();
}

}  // namespace gust::engine

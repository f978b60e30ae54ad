#include "engine/map_functions.h"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/clock.h"
#include "common/ids.h"
#include "common/run_guarded.h"

namespace gust::engine {
namespace {

constexpr char kMapHandler[] = "gust_runtime.map_worker.handler";
constexpr int kListPage = 500;

bool IsMapFunction(const std::string& name) { return name.rfind(kMapFunctionPrefix, 0) == 0; }

}  // namespace

MapFunctions::MapFunctions(boost::asio::io_context& io, boost::asio::thread_pool& workers,
                           MetadataStore& store, BlobStore& blobs, BundleCache& bundles,
                           Invoker& invoker, MapJobs& jobs, int ttl_s)
    : io_(io),
      workers_(workers),
      store_(store),
      blobs_(blobs),
      bundles_(bundles),
      invoker_(invoker),
      jobs_(jobs),
      ttl_s_(std::max(ttl_s, 1)),
      timer_(io) {}

std::string MapPython(const std::string& executable, const std::string& prefix,
                      const std::string& base_prefix, const std::string& engine_python) {
  if (executable == engine_python) return "";
  if (prefix != base_prefix) return executable;  // a venv: its own site-packages
  std::error_code ec1, ec2;
  auto mine = std::filesystem::canonical(engine_python, ec1);
  auto theirs = std::filesystem::canonical(executable, ec2);
  // A path the engine cannot resolve is the client's environment all the
  // same: the launcher's error then names it (unreadable, missing).
  if (!ec1 && !ec2 && mine == theirs) return "";
  return executable;
}

Result<std::string> MapFunctions::Ensure(const MapFunctionKey& key, int concurrency) {
  std::string fingerprint = key.code + "\n" + std::to_string(key.memory_mb) + "\n" +
                            std::to_string(key.timeout_s) + "\n" + (key.network ? "net" : "nonet");
  // Appended only when set: the engine's own Python keeps the names maps had
  // before environments existed.
  if (!key.python.empty()) fingerprint += "\npython=" + key.python;
  std::string name = kMapFunctionPrefix + Sha256Hex(fingerprint).substr(0, 16);
  MutexLock lock(&mu_);
  last_used_ms_[name] = NowEpochMs();
  // The usual case, a function mapped again: one metadata read (it may have
  // been deleted through the Lambda API), no code read, no write.
  auto known = reserved_.find(name);
  if (known != reserved_.end() && known->second >= concurrency && bundles_.Contains(key.code) &&
      store_.GetFunction(name, kLatest).ok()) {
    return name;
  }
  GUST_ASSIGN_OR_RETURN(std::string zip, blobs_.Get(key.code));
  GUST_RETURN_IF_ERROR(bundles_.Ensure(key.code, zip).status());
  if (!store_.GetFunction(name, kLatest).ok()) {
    FunctionConfig config;
    config.name = name;
    config.handler = kMapHandler;
    config.description = "gust map worker for code " + key.code.substr(0, 12);
    config.memory_mb = key.memory_mb;
    config.timeout_s = key.timeout_s;
    config.network = key.network;
    config.python = key.python;
    config.code_sha256 = key.code;
    config.code_size = static_cast<int64_t>(zip.size());
    config.revision_id = NewRequestId();
    config.last_modified_ms = NowEpochMs();
    Status created = store_.CreateFunction(config);
    if (!created.ok() && created.code() != Code::kConflict) return created;
  }
  // The map's concurrency is the function's: without it the invoker's default
  // per-function limit would throttle a wide map.
  auto settings = store_.GetSettings(name);
  if (!settings.ok() || settings->reserved_concurrency.value_or(0) < concurrency) {
    FunctionSettings wanted;
    wanted.reserved_concurrency = concurrency;
    GUST_RETURN_IF_ERROR(store_.PutSettings(name, wanted));
    boost::asio::post(io_, [this, name] { invoker_.FunctionChanged(name); });
    reserved_[name] = concurrency;
  } else {
    reserved_[name] = settings->reserved_concurrency.value_or(0);
  }
  return name;
}

void MapFunctions::Start() {
  stopped_ = false;
  ScheduleSweep();
}

void MapFunctions::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void MapFunctions::ScheduleSweep() {
  if (stopped_) return;
  auto interval = std::chrono::seconds(std::clamp(ttl_s_ / 2, 1, 60));
  timer_.expires_after(interval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    // The active set is read here, on the engine thread, where MapJobs lives.
    std::vector<std::string> active = jobs_.ActiveFunctions();
    PostGuarded(workers_, [this, active = std::move(active)] {
      std::vector<std::string> deleted = Collect(active, NowEpochMs());
      boost::asio::post(io_, [this, deleted = std::move(deleted)] {
        for (const std::string& name : deleted) invoker_.FunctionDeleted(name);
        ScheduleSweep();
      });
    });
  });
}

std::vector<std::string> MapFunctions::Collect(const std::vector<std::string>& active,
                                               int64_t now_ms) {
  std::set<std::string> in_use(active.begin(), active.end());
  std::vector<FunctionConfig> all;
  std::string marker;
  do {
    auto page = store_.ListFunctions(marker, kListPage);
    if (!page.ok()) {
      spdlog::warn("map function sweep: cannot list functions: {}", page.status().ToString());
      return {};
    }
    all.insert(all.end(), page->functions.begin(), page->functions.end());
    marker = page->next_marker;
  } while (!marker.empty());

  std::vector<std::string> deleted;
  std::set<std::string> freed_code;
  {
    MutexLock lock(&mu_);
    for (const FunctionConfig& f : all) {
      if (!IsMapFunction(f.name) || in_use.count(f.name)) continue;
      auto used = last_used_ms_.find(f.name);
      int64_t last = used != last_used_ms_.end() ? used->second : f.last_modified_ms;
      if (now_ms - last < int64_t{ttl_s_} * 1000) continue;
      Status s = store_.DeleteFunction(f.name);
      if (!s.ok() && s.code() != Code::kNotFound) {
        spdlog::warn("map function sweep: cannot delete {}: {}", f.name, s.ToString());
        continue;
      }
      if (used != last_used_ms_.end()) last_used_ms_.erase(used);
      reserved_.erase(f.name);
      deleted.push_back(f.name);
      freed_code.insert(f.code_sha256);
    }
    // Code no remaining function uses goes too (a client uploads it again).
    for (const FunctionConfig& f : all) {
      if (std::find(deleted.begin(), deleted.end(), f.name) == deleted.end()) {
        freed_code.erase(f.code_sha256);
      }
    }
    for (const std::string& digest : freed_code) {
      (void)blobs_.Remove(digest);
      (void)bundles_.Remove(digest);
    }
  }
  if (!deleted.empty()) {
    spdlog::info("collected {} unused map function(s) and {} code bundle(s)", deleted.size(),
                 freed_code.size());
  }
  return deleted;
}

}  // namespace gust::engine

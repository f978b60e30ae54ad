#include "api/channel_api.h"

#include <fstream>
#include <optional>
#include <sstream>

#include "api/body_parsers.h"
#include "api/lambda_shapes.h"

namespace gust::api {
namespace {

using nlohmann::json;
using beast_verb = http::beast_http::verb;

constexpr char kDenied[] = "AccessDeniedException";

// The parent of a process (the engine's pid namespace), or -1. /proc/<pid>/stat
// is "pid (comm) state ppid ...", and comm may hold spaces and parentheses.
int ParentPid(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 1));
  char state = 0;
  int ppid = -1;
  if (!(rest >> state >> ppid)) return -1;
  return ppid;
}

http::Response Denied(const std::string& message) { return ErrorResponse({403, kDenied, message}); }

// The first of peer and up to kMaxParentHops of its parents that lookup knows.
template <typename Lookup>
auto FindUp(int peer, Lookup lookup) -> decltype(lookup(peer)) {
  decltype(lookup(peer)) found = Status::NotFound("");
  for (int pid = peer, hop = 0; pid > 1 && hop <= ChannelApi::kMaxParentHops;
       pid = ParentPid(pid), ++hop) {
    found = lookup(pid);
    if (found.ok()) break;
  }
  return found;
}

// "/v1/jobs/{id}..." -> id (maybe empty: "/v1/jobs/"); nullopt for a path
// that names no job.
std::optional<std::string> JobIdInPath(std::string_view target) {
  target = target.substr(0, target.find('?'));
  constexpr std::string_view kPrefix = "/v1/jobs/";
  if (target.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  target.remove_prefix(kPrefix.size());
  return std::string(target.substr(0, target.find('/')));
}

}  // namespace

std::vector<std::string> ParseAncestors(const http::Request& req) {
  std::vector<std::string> out;
  auto it = req.find(kAncestorsHeader);
  if (it == req.end()) return out;
  std::string_view text(it->value().data(), it->value().size());
  while (!text.empty()) {
    size_t comma = text.find(',');
    if (comma > 0) out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

BucketGrants ParseGrantsHeader(const http::Request& req) {
  auto it = req.find(kGrantsHeader);
  if (it == req.end()) return {};
  return SplitBucketGrants(std::string_view(it->value().data(), it->value().size()));
}

ChannelApi::ChannelApi(const ApiContext& ctx, JobsApi& jobs, S3Api& s3)
    : info_(ctx.info), jobs_(ctx.map_jobs), invoker_(ctx.invoker), s3_(s3) {
  jobs.Register(router_);
  router_.Add(beast_verb::get, "/v1/health", std::bind_front(&ChannelApi::Health, this));
  auto refuse = [](http::Request&& req, const http::RouteMatch&, http::Responder r) {
    r.Send(
        Denied("the sandbox channel serves only the map-job API (/v1/blobs, /v1/jobs, "
               "/v1/health) and the object API (/s3): " +
               std::string(req.method_string()) + " " + std::string(req.target()) +
               " is not on it (docs/SECURITY.md, \"The sandbox channel\")"));
  };
  router_.SetNotFound(refuse);
  router_.SetMethodNotAllowed(refuse);
}

void ChannelApi::Handle(http::Request&& req, http::Responder responder) {
  req.erase(kAncestorsHeader);  // only this handler sets them
  req.erase(kGrantsHeader);
  const int peer = responder.Peer().pid;
  auto asker = FindUp(peer, [this](int pid) { return jobs_.SandboxJob(pid); });
  if (S3Api::Accepts(req)) {
    Objects(std::move(req), std::move(responder), asker);
    return;
  }
  if (!asker.ok()) {
    responder.Send(
        Denied("the sandbox channel answers only the tasks of running map jobs (and any "
               "sandbox's /s3 requests); process " +
               std::to_string(peer) + " is not one"));
    return;
  }
  if (auto id = JobIdInPath(req.target())) {
    auto mine = id->empty() ? Result<bool>(false) : jobs_.DescendsFrom(*id, asker->job);
    if (!mine.ok() || !*mine) {
      // The same answer whether the job exists or not: a task learns nothing
      // of other jobs.
      responder.Send(Denied("job " + *id + " was not submitted from this task's job " + asker->job +
                            ": a task reaches only its own jobs"));
      return;
    }
  }
  // Every request carries the asker's lineage; a submission (however its
  // path is spelled) makes it the new job's ancestors, and JobsApi::Submit
  // checks the depth.
  std::string lineage = asker->job;
  for (const auto& a : asker->ancestors) lineage += "," + a;
  req.set(kAncestorsHeader, lineage);
  req.set(kGrantsHeader, JoinBucketGrants(asker->buckets));
  router_.Route(std::move(req), responder);
}

void ChannelApi::Objects(http::Request&& req, http::Responder responder,
                         const Result<engine::MapJobs::Lineage>& task) {
  if (task.ok()) {
    s3_.HandleGranted(std::move(req), std::move(responder), task->buckets);
    return;
  }
  const int peer = responder.Peer().pid;
  auto config = FindUp(peer, [this](int pid) { return invoker_.SandboxConfig(pid); });
  if (!config.ok()) {
    responder.Send(
        S3Api::AccessDenied("the sandbox channel's /s3 answers only sandboxes (map "
                            "tasks and functions); process " +
                            std::to_string(peer) + " is not one"));
    return;
  }
  // Stored merged and checked (FunctionConfig::buckets): parsing cannot fail,
  // and a grant that somehow did not parse is no grant.
  auto grants = ParseBucketGrants((*config)->buckets);
  s3_.HandleGranted(std::move(req), std::move(responder), grants.ok() ? *grants : BucketGrants{});
}

void ChannelApi::Health(http::Request&&, const http::RouteMatch&, http::Responder r) {
  r.Send(JsonResponse(200, json{{"status", "ok"},
                                {"version", info_.version},
                                {"python", RuntimePythonVersion()},
                                {"map_protocol", kMapProtocol},
                                {"channel", true}}));
}

}  // namespace gust::api

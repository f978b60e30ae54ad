// ChannelApi: what a map task reaches of its engine from inside its sandbox
// (issue 13: a task can use gust itself). The engine serves it on a unix
// socket, <state dir>/channel/engine.sock, which every sandbox sees read-only
// at /run/gust/engine.sock (sandbox/rootfs.h) and a map task finds through
// GUST_ENDPOINT (gust_runtime.map_worker); a sandbox needs no network for it.
//
// Who asks is the credential. The server hands over the peer's pid
// (SO_PEERCRED, http/server.h); ChannelApi maps it, or one of up to
// kMaxParentHops parents (a task's own child processes), to the map job whose
// session runs on that sandbox (MapJobs::SandboxJob). A peer that is no
// running map task (a Lambda function, a warm sandbox between jobs, a host
// process) gets 403 AccessDeniedException naming its pid. No SigV4 signature
// is checked here, with or without `gust up --auth`: the socket and the peer's
// identity stand for the key, and a task holds no secret.
//
// Routes: the map-job API only (JobsApi's: HEAD/PUT /v1/blobs/{sha256}, POST
// /v1/jobs, GET /v1/jobs/{id}, its results, cancel, DELETE) and a GET
// /v1/health reduced to what the client checks (version, python,
// map_protocol). Any other path or method: 403 AccessDeniedException "the
// sandbox channel serves only the map-job API ...". A job id in the path
// must be the asking task's own job or one submitted from it or below it
// (else 403): a task cannot read, cancel or delete another job.
//
// Nesting: every request here carries the asker's job and its ancestors in
// the internal header kAncestorsHeader (set here, erased from the TCP
// listener's requests); JobsApi::Submit records them as the new job's
// ancestors (MapJobSpec) and refuses a job deeper than config.max_map_depth
// with 400 MapNestingTooDeepException "maps nested deeper than N ...". docs/SECURITY.md ("The
// sandbox channel") has the threat model.
//
// Thread-safety: Register once before serving; Handle runs on the engine
// thread (MapJobs lives there).
#pragma once

#include <string>
#include <vector>

#include "api/api_context.h"
#include "api/jobs_api.h"
#include "http/router.h"
#include "http/server.h"

namespace gust::api {

// Internal: the ancestors of a job submitted through the channel, parent
// first, comma-separated.
inline constexpr char kAncestorsHeader[] = "x-gust-ancestors";

// The ancestors kAncestorsHeader carries (empty when absent).
std::vector<std::string> ParseAncestors(const http::Request& req);

class ChannelApi {
 public:
  // A connecting process's parents searched for a map sandbox's runtime.
  static constexpr int kMaxParentHops = 8;

  ChannelApi(const ApiContext& ctx, JobsApi& jobs);
  // Every request of the channel's listener.
  void Handle(http::Request&& req, http::Responder responder);

 private:
  void Health(http::Request&& req, const http::RouteMatch& m, http::Responder r);

  const EngineInfo& info_;
  engine::MapJobs& jobs_;
  http::Router router_;
};

}  // namespace gust::api

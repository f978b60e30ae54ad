// ChannelApi: what a sandbox reaches of its engine from inside: a map task
// the map-job API (issue 13: a task can use gust itself), a map task and a
// Lambda function the object API for their granted buckets (issue 16). The
// engine serves it on a unix socket, <state dir>/channel/engine.sock, which
// every sandbox sees read-only at /run/gust/engine.sock (sandbox/rootfs.h) and
// finds through GUST_ENDPOINT (gust_runtime.bootstrap), boto3 through the
// runtime's TCP relay (GUST_S3_ENDPOINT, gust_runtime.s3_relay); a sandbox
// needs no network for it.
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
// Objects: /s3 and below (S3Api's routes) answers a map task with its job's
// bucket grants (MapJobSpec::buckets) and a Lambda function's sandbox (a peer,
// or one of its parents, that is the runtime of a live sandbox:
// Invoker::SandboxConfig) with the grants of the configuration the sandbox
// was started with (FunctionConfig::buckets); S3Api::HandleGranted applies
// them (403 AccessDenied in S3's XML beyond them). A process that is neither
// gets 403 AccessDenied naming its pid. A function's sandbox reaches nothing
// else here (the map-job routes refuse it as below). In a cluster the objects
// are the node's own, as on its TCP port.
//
// Routes for map tasks: /s3 (above) and the map-job API (JobsApi's: HEAD/PUT /v1/blobs/{sha256},
// POST /v1/jobs, GET /v1/jobs/{id}, its results, cancel, DELETE) and a GET /v1/health reduced to
// what the client checks (version, python, map_protocol). Any other path or method: 403
// AccessDeniedException "the sandbox channel serves only the map-job API ...". A job id in the path
// must be the asking task's own job or one submitted from it or below it
// (else 403): a task cannot read, cancel or delete another job.
//
// Nesting: every request here carries the asker's job and its ancestors in
// the internal header kAncestorsHeader (set here, erased from the TCP
// listener's requests); JobsApi::Submit records them as the new job's
// ancestors (MapJobSpec) and refuses a job deeper than config.max_map_depth
// with 400 MapNestingTooDeepException "maps nested deeper than N ...". docs/SECURITY.md ("The
// sandbox channel") has the threat model. Likewise kGrantsHeader carries the
// asker's job's bucket grants, and JobsApi::Submit refuses (403) a nested job
// whose "Buckets" are wider.
//
// Thread-safety: Register once before serving; Handle runs on the engine
// thread (MapJobs lives there).
#pragma once

#include <string>
#include <vector>

#include "api/api_context.h"
#include "api/jobs_api.h"
#include "api/s3_api.h"
#include "http/router.h"
#include "http/server.h"

namespace gust::api {

// Internal: the ancestors of a job submitted through the channel, parent
// first, comma-separated.
inline constexpr char kAncestorsHeader[] = "x-gust-ancestors";

// The ancestors kAncestorsHeader carries (empty when absent).
std::vector<std::string> ParseAncestors(const http::Request& req);

// Internal: the bucket grants of the job a channel request comes from
// (JoinBucketGrants' text).
inline constexpr char kGrantsHeader[] = "x-gust-buckets";
// The grants kGrantsHeader carries (none when absent).
BucketGrants ParseGrantsHeader(const http::Request& req);

class ChannelApi {
 public:
  // A connecting process's parents searched for a map sandbox's runtime.
  static constexpr int kMaxParentHops = 8;

  ChannelApi(const ApiContext& ctx, JobsApi& jobs, S3Api& s3);
  // Every request of the channel's listener.
  void Handle(http::Request&& req, http::Responder responder);

 private:
  void Health(http::Request&& req, const http::RouteMatch& m, http::Responder r);

  // The /s3 requests: the peer's grants, or its refusal.
  void Objects(http::Request&& req, http::Responder responder,
               const Result<engine::MapJobs::Lineage>& task);

  const EngineInfo& info_;
  engine::MapJobs& jobs_;
  engine::Invoker& invoker_;
  S3Api& s3_;
  http::Router router_;
};

}  // namespace gust::api

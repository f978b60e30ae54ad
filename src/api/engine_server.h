// EngineServer: the composition root of one engine process — opens the state
// dir (SQLite metadata, blobs, extracted bundles, logs), starts the sandbox
// launcher (zygote), the invoker and the HTTP server with the Lambda and /v1
// APIs on one io_context thread, and runs until SIGINT/SIGTERM or Stop().
//
// Authentication: with config.access_key_id set, every request to the Lambda
// and /v1 APIs must carry a valid AWS SigV4 signature for that key (checked
// once, before routing; refusals are 403s in Lambda's error shape naming the
// reason, src/http/sigv4.h); web apps only when their function asks for it
// (gateway.h). Without credentials nothing is checked, and Run refuses to
// bind anything but loopback unless config.insecure_no_auth.
//
// Startup failures (port in use, no cgroups, unreadable state dir) are
// returned as Status with a message a user can act on; nothing is left
// running. Shutdown kills every sandbox and flushes logs and records.
//
// Thread-safety: Run() blocks the calling thread; Stop() may be called from
// any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/status.h"

namespace gust::api {

// Whether host is a loopback address (127.0.0.0/8, ::1) or "localhost".
bool IsLoopbackHost(const std::string& host);

class EngineServer {
 public:
  explicit EngineServer(EngineConfig config);
  ~EngineServer();
  // Calls on_ready(url, isolation summary) once serving, then blocks until stopped.
  Status Run(
      const std::function<void(const std::string& url, const std::string& isolation)>& on_ready);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gust::api

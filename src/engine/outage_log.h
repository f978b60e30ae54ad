// OutageLog: logs the failures of one dependency once per outage, not once per attempt. A
// database that is down for a minute fails every commit, page-in and heartbeat tried in it;
// the operator needs the first failure (when it began, and why) and the recovery, not
// hundreds of lines that say the same.
//
//   Note(error) on the first failure: logged at error level, naming `what` and the status;
//   Note(error) again: counted only;
//   Note(ok) after failures: "WHAT works again (N attempts failed)" at info level.
//
// Thread-safety: none; each OutageLog belongs to one thread (the one that makes the attempts).
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace gust::engine {

class OutageLog {
 public:
  // what: a noun phrase for the attempts ("event queue commit"); retry: how they are retried
  // ("retried every 2000 ms"), said with the first failure.
  OutageLog(std::string what, std::string retry)
      : what_(std::move(what)), retry_(std::move(retry)) {}

  void Note(const Status& status) {
    if (!status.ok()) {
      if (failed_++ == 0)
        spdlog::error("{} failed ({}; logged once until it works again): {}", what_, retry_,
                      status.ToString());
      return;
    }
    if (failed_ > 0) spdlog::info("{} works again ({} attempts failed)", what_, failed_);
    failed_ = 0;
  }
  bool failing() const { return failed_ > 0; }

 private:
  const std::string what_;
  const std::string retry_;
  uint64_t failed_ = 0;
};

}  // namespace gust::engine

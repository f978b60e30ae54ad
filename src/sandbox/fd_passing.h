// Message + file-descriptor passing over a SOCK_SEQPACKET unix socket
// (SCM_RIGHTS): the transport between ZygoteLauncher and gust-sandbox-init.
// One call sends or receives exactly one message (datagram boundaries are
// kept by SEQPACKET), with up to kMaxFds descriptors attached.
//
// Failures: every OS error comes back as a Status; would-block is reported as
// Code::kUnavailable so non-blocking callers can retry later. Received
// descriptors are always owned by the returned value (also when the message is
// then rejected), so nothing leaks; they are opened close-on-exec.
//
// Thread-safety: reentrant functions; the socket is the caller's business.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sandbox/unique_fd.h"

namespace gust::sandbox {

inline constexpr size_t kMaxFds = 16;
inline constexpr size_t kMaxMessageBytes = 64 * 1024;

// flags: e.g. MSG_DONTWAIT. MSG_NOSIGNAL is always added.
Status SendMessage(int sock, std::string_view data, const std::vector<int>& fds, int flags = 0);

struct ReceivedMessage {
  bool eof = false;  // the peer closed the socket
  std::string data;
  std::vector<UniqueFd> fds;
};

// Errors: truncated data or control data (InvalidArgument), OS errors.
Result<ReceivedMessage> ReceiveMessage(int sock, int flags = 0);

}  // namespace gust::sandbox

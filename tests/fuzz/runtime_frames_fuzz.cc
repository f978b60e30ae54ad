// Fuzz target: the runtime protocol (docs/RUNTIME_PROTOCOL.md) as the engine
// reads it from a sandbox. The bytes a sandbox could write on its control
// socket (user code can) go into one end of a real socketpair, which is then
// closed; a RuntimeChannel on the other end reads frames until it reports an
// error (a protocol violation, or the runtime closing the socket), as
// SandboxSession does. Invariants: every frame has a known type and a body
// within kMaxFrameBody, and the stream ends in an error, not a hang.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>

#include "runtime/protocol.h"

namespace {

using gust::runtime::Frame;
using gust::runtime::RuntimeChannel;

// Reads frames until the channel fails; counts them.
void ReadAll(RuntimeChannel& channel, int* frames, bool* ended) {
  channel.ReadFrame([&channel, frames, ended](gust::Result<Frame> frame) {
    if (!frame.ok()) {
      *ended = true;
      return;
    }
    if (frame->body.size() > gust::runtime::kMaxFrameBody) std::abort();
    (void)gust::runtime::FrameTypeName(frame->type);
    ++*frames;
    ReadAll(channel, frames, ended);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The header decoder on its own, with a small limit (the channel uses kMaxFrameBody).
  if (size >= gust::runtime::kFrameHeaderBytes) {
    (void)gust::runtime::DecodeHeader(data, 1024);
  }

  static boost::asio::io_context io(1);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  // libFuzzer's inputs are small (-max_len), below the socket buffer: one write.
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fds[1], data + off, size - off);
    if (n <= 0) std::abort();
    off += static_cast<size_t>(n);
  }
  ::close(fds[1]);  // the sandbox is gone after its last byte

  int frames = 0;
  bool ended = false;
  {
    RuntimeChannel channel(io, fds[0]);
    ReadAll(channel, &frames, &ended);
    io.restart();
    io.run();
  }
  if (!ended) std::abort();  // neither a frame nor an error: the engine would hang
  return 0;
}

// Engine side of the runtime protocol (docs/RUNTIME_PROTOCOL.md): frame
// encoding/decoding (pure functions, fuzzable) and RuntimeChannel, the async
// reader/writer of one sandbox's control socket.
//
// Thread-safety: RuntimeChannel is used from the io_context it was built on.
// Frame functions are reentrant.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gust::runtime {

enum class FrameType : uint8_t {
  kInvoke = 1,
  kReady = 10,
  kInitError = 11,
  kResult = 12,
  kError = 13,
};

inline constexpr size_t kFrameHeaderBytes = 8;
// Largest frame body the engine accepts from a runtime: a 6 MB response plus slack.
inline constexpr uint32_t kMaxFrameBody = 6 * 1024 * 1024 + 64 * 1024;

struct Frame {
  FrameType type;
  std::string body;
};

struct InvokeMeta {
  std::string request_id;
  int64_t deadline_ms = 0;
  std::string invoked_function_arn;
  std::string client_context_json;  // "" -> null
};

// Header + body of an INVOKE frame.
std::string EncodeInvoke(const InvokeMeta& meta, std::string_view payload);
std::string EncodeFrame(FrameType type, std::string_view body);
// Parses an 8-byte header. InvalidArgument on unknown type or body over max_body.
Result<std::pair<FrameType, uint32_t>> DecodeHeader(const uint8_t* header, uint32_t max_body);

// One sandbox's control socket. Reads and writes are asynchronous; at most one
// read and one write outstanding at a time (the engine's invocation state
// machine guarantees it).
class RuntimeChannel {
 public:
  // Takes ownership of fd.
  RuntimeChannel(boost::asio::io_context& io, int fd);
  ~RuntimeChannel();
  void ReadFrame(std::function<void(Result<Frame>)> done);
  void Write(std::string bytes, std::function<void(Status)> done);
  void Close();

 private:
  boost::asio::local::stream_protocol::socket socket_;
  uint8_t header_[kFrameHeaderBytes];
  std::string read_body_;
  std::string write_buf_;
};

}  // namespace gust::runtime

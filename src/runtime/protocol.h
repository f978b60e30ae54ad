// Engine side of the runtime protocol (docs/RUNTIME_PROTOCOL.md): frame
// encoding/decoding (pure functions, fuzzable) and RuntimeChannel, the async
// reader/writer of one sandbox's control socket.
//
// Wire format: every frame is an 8-byte header (u32 body length LE, u8 type,
// u8 flags = 0, u16 reserved = 0) followed by the body. An INVOKE body is a
// u32 LE meta length, the meta JSON, then the raw payload bytes.
//
// Errors: DecodeHeader returns InvalidArgument naming the bad field. Channel
// reads report a clean EOF between frames as kUnavailable "runtime closed the
// control socket" (the sandbox exited or crashed), a protocol violation as
// kInvalidArgument, other socket errors as kIoError.
//
// Thread-safety: RuntimeChannel is used from the io_context it was built on.
// Frame functions are reentrant.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace gust::runtime {

enum class FrameType : uint8_t {
  kInvoke = 1,
  kResume = 2,  // more input for a streaming invocation (empty: no more)
  kReady = 10,
  kInitError = 11,
  kResult = 12,
  kError = 13,
  kYield = 14,  // partial output of a streaming invocation; asks for RESUME
};

// "INVOKE", "READY", ... ("UNKNOWN(7)" for a value outside the enum).
std::string FrameTypeName(FrameType type);

inline constexpr size_t kFrameHeaderBytes = 8;
// Largest frame body the engine accepts from a runtime: a 6 MB response plus slack.
inline constexpr uint32_t kMaxFrameBody = 6 * 1024 * 1024 + 64 * 1024;

struct Frame {
  FrameType type;
  std::string body;
};

struct InvokeMeta {
  std::string request_id;
  int64_t deadline_ms = 0;  // epoch milliseconds
  std::string invoked_function_arn;
  // A JSON document (already validated by the API layer), or "" for null. A
  // value that does not parse is sent as null.
  std::string client_context_json;
  // The runtime hands the payload to the handler as bytes instead of
  // json-decoding it (map jobs: pickled tasks).
  bool raw_event = false;
  // A streaming invocation: the handler may send partial output (YIELD) and
  // receive more input (RESUME) before its result (map jobs pull tasks).
  bool stream = false;
};

// Header + body of an INVOKE frame.
std::string EncodeInvoke(const InvokeMeta& meta, std::string_view payload);
// Header + body of any frame.
std::string EncodeFrame(FrameType type, std::string_view body);
// Parses an 8-byte header into (type, body length). InvalidArgument on an
// unknown type, non-zero flags/reserved bytes, or a body over max_body.
Result<std::pair<FrameType, uint32_t>> DecodeHeader(const uint8_t* header, uint32_t max_body);

// Lambda's error document, {"errorType": type, "errorMessage": message}: what
// an ERROR frame carries, and what the engine answers in its place when the
// failure is its own (timeout, sandbox exit, expired event). Never throws.
std::string ErrorDocument(const std::string& type, const std::string& message);

// One sandbox's control socket. Reads and writes are asynchronous; at most one
// read and one write outstanding at a time (the engine's invocation state
// machine guarantees it).
//
// Each `done` callback runs exactly once on the io_context, including after
// Close() (then with kUnavailable "control socket closed") -- unless the
// channel is destroyed first: callbacks of operations still pending at
// destruction are dropped, so an owner may destroy a channel at any time.
class RuntimeChannel {
 public:
  // Takes ownership of fd (a connected AF_UNIX stream socket).
  RuntimeChannel(boost::asio::io_context& io, int fd);
  ~RuntimeChannel();
  RuntimeChannel(const RuntimeChannel&) = delete;
  RuntimeChannel& operator=(const RuntimeChannel&) = delete;

  // Reads one frame (header, then a body of up to kMaxFrameBody bytes).
  void ReadFrame(std::function<void(Result<Frame>)> done);
  // Writes all of bytes (one or more encoded frames).
  void Write(std::string bytes, std::function<void(Status)> done);
  // Closes the socket; pending operations complete with kUnavailable. Idempotent.
  void Close();
  bool is_open() const;

 private:
  struct State;  // socket + buffers; shared with in-flight completion handlers
  std::shared_ptr<State> state_;
};

}  // namespace gust::runtime

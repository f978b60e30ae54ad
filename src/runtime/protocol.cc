#include "runtime/protocol.h"

#include <unistd.h>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <utility>
#include <vector>

#include "common/json_read.h"

namespace gust::runtime {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;

namespace {

constexpr char kClosedByRuntime[] = "runtime closed the control socket";
constexpr char kClosedByEngine[] = "control socket closed";

void PutU32(std::string& out, uint32_t v) {
  const char bytes[4] = {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
                         static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
  out.append(bytes, 4);
}

void PutHeader(std::string& out, FrameType type, uint32_t body_len) {
  PutU32(out, body_len);
  const char rest[4] = {static_cast<char>(type), 0, 0, 0};
  out.append(rest, 4);
}

// Appends s as a JSON string literal.
void AppendJsonString(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x80 || c == '"' || c == '\\') {
      out += JsonDump(nlohmann::json(std::string(s)));  // needs escaping or UTF-8 checks
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

bool IsKnownType(uint8_t t) {
  switch (static_cast<FrameType>(t)) {
    case FrameType::kInvoke:
    case FrameType::kResume:
    case FrameType::kReady:
    case FrameType::kInitError:
    case FrameType::kResult:
    case FrameType::kError:
    case FrameType::kYield:
      return true;
  }
  return false;
}

// Maps a socket error to the Status the engine acts on.
Status SocketError(const boost::system::error_code& ec, std::string_view op, bool mid_frame) {
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe) {
    return Status::Unavailable(mid_frame ? std::string(kClosedByRuntime) + " mid-frame"
                                         : std::string(kClosedByRuntime));
  }
  if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
    return Status::Unavailable(kClosedByEngine);
  }
  return Status::IoError(std::string("control socket ") + std::string(op) + ": " + ec.message());
}

}  // namespace

std::string FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kInvoke:
      return "INVOKE";
    case FrameType::kResume:
      return "RESUME";
    case FrameType::kYield:
      return "YIELD";
    case FrameType::kReady:
      return "READY";
    case FrameType::kInitError:
      return "INIT_ERROR";
    case FrameType::kResult:
      return "RESULT";
    case FrameType::kError:
      return "ERROR";
  }
  return "UNKNOWN(" + std::to_string(static_cast<int>(type)) + ")";
}

std::string EncodeFrame(FrameType type, std::string_view body) {
  std::string out;
  out.reserve(kFrameHeaderBytes + body.size());
  PutHeader(out, type, static_cast<uint32_t>(body.size()));
  out.append(body);
  return out;
}

std::string EncodeInvoke(const InvokeMeta& meta, std::string_view payload) {
  // The meta JSON is assembled by hand (nlohmann only escapes strings that
  // need it and validates the client context): building a json object costs
  // ~1 us per invoke, a sizeable share of a ~30 us warm round trip.
  std::string meta_json;
  meta_json.reserve(128 + meta.request_id.size() + meta.invoked_function_arn.size() +
                    meta.client_context_json.size());
  meta_json += "{\"request_id\":";
  AppendJsonString(meta_json, meta.request_id);
  meta_json += ",\"deadline_ms\":";
  meta_json += std::to_string(meta.deadline_ms);
  meta_json += ",\"invoked_function_arn\":";
  AppendJsonString(meta_json, meta.invoked_function_arn);
  meta_json += ",\"client_context\":";
  if (meta.client_context_json.empty()) {
    meta_json += "null";
  } else {
    const nlohmann::json cc = JsonParse(meta.client_context_json);
    meta_json += cc.is_discarded() ? std::string("null") : JsonDump(cc);
  }
  if (meta.raw_event) meta_json += ",\"raw_event\":true";
  if (meta.stream) meta_json += ",\"stream\":true";
  meta_json += '}';

  const size_t body_len = 4 + meta_json.size() + payload.size();
  std::string out;
  out.reserve(kFrameHeaderBytes + body_len);
  PutHeader(out, FrameType::kInvoke, static_cast<uint32_t>(body_len));
  PutU32(out, static_cast<uint32_t>(meta_json.size()));
  out.append(meta_json);
  out.append(payload);
  return out;
}

std::string ErrorDocument(const std::string& type, const std::string& message) {
  return JsonDump(nlohmann::json{{"errorType", type}, {"errorMessage", message}});
}

Result<std::pair<FrameType, uint32_t>> DecodeHeader(const uint8_t* header, uint32_t max_body) {
  const uint32_t length =
      static_cast<uint32_t>(header[0]) | (static_cast<uint32_t>(header[1]) << 8) |
      (static_cast<uint32_t>(header[2]) << 16) | (static_cast<uint32_t>(header[3]) << 24);
  const uint8_t type = header[4];
  if (!IsKnownType(type)) {
    return Status::InvalidArgument("unknown frame type " + std::to_string(type));
  }
  const auto frame_type = static_cast<FrameType>(type);
  if (header[5] != 0) {
    return Status::InvalidArgument(FrameTypeName(frame_type) + " frame has flags " +
                                   std::to_string(header[5]) + ", expected 0");
  }
  if (header[6] != 0 || header[7] != 0) {
    return Status::InvalidArgument(FrameTypeName(frame_type) +
                                   " frame has non-zero reserved bytes");
  }
  if (length > max_body) {
    return Status::InvalidArgument(FrameTypeName(frame_type) + " frame body of " +
                                   std::to_string(length) + " bytes exceeds the maximum of " +
                                   std::to_string(max_body));
  }
  return std::make_pair(frame_type, length);
}

// Frames whose header + body fit in this many bytes are read into the
// channel's reusable buffer, usually with a single recv; larger bodies are
// read straight into their own string.
constexpr size_t kReadBufferBytes = 64 * 1024;

struct RuntimeChannel::State {
  explicit State(asio::io_context& io) : socket(io), inbuf(kReadBufferBytes) {}

  using ReadDone = std::function<void(Result<Frame>)>;

  // If the channel is closed or never opened, completes done (on the executor,
  // never inline) with why, and returns true.
  template <typename Done>
  static bool CompleteIfUnusable(const std::shared_ptr<State>& st, Done& done) {
    if (st->open_status.ok() && !st->closed) return false;
    Status status = st->closed ? Status::Unavailable(kClosedByEngine) : st->open_status;
    asio::post(st->socket.get_executor(), [st, status, done = std::move(done)] {
      if (!st->destroyed) done(status);
    });
    return true;
  }

  // Delivers the next frame to done, reading from the socket as needed.
  // Unconsumed bytes are inbuf[in_start, in_end).
  static void Pump(const std::shared_ptr<State>& st, ReadDone done);
  static void ReadBigBody(const std::shared_ptr<State>& st, FrameType type, uint32_t length,
                          ReadDone done);

  stream_protocol::socket socket;
  std::vector<uint8_t> inbuf;
  size_t in_start = 0;
  size_t in_end = 0;
  std::string big_body;
  std::string write_buf;
  bool destroyed = false;  // the channel is gone: drop completions
  bool closed = false;     // Close() was called
  Status open_status;      // not OK if the fd could not be adopted
};

void RuntimeChannel::State::Pump(const std::shared_ptr<State>& st, ReadDone done) {
  const size_t avail = st->in_end - st->in_start;
  if (avail >= kFrameHeaderBytes) {
    const uint8_t* start = st->inbuf.data() + st->in_start;
    auto header = DecodeHeader(start, kMaxFrameBody);
    if (!header.ok()) {
      done(header.status());
      return;
    }
    const auto [type, length] = header.value();
    const size_t frame_bytes = kFrameHeaderBytes + length;
    if (avail >= frame_bytes) {
      Frame frame{type,
                  std::string(reinterpret_cast<const char*>(start) + kFrameHeaderBytes, length)};
      st->in_start += frame_bytes;
      if (st->in_start == st->in_end) st->in_start = st->in_end = 0;
      done(std::move(frame));
      return;
    }
    if (frame_bytes > st->inbuf.size()) {
      ReadBigBody(st, type, length, std::move(done));
      return;
    }
  }
  // Need more bytes: move the partial frame to the front, then recv after it.
  if (st->in_start > 0) {
    std::memmove(st->inbuf.data(), st->inbuf.data() + st->in_start, avail);
    st->in_start = 0;
    st->in_end = avail;
  }
  st->socket.async_read_some(
      asio::buffer(st->inbuf.data() + st->in_end, st->inbuf.size() - st->in_end),
      [st, done = std::move(done)](const boost::system::error_code& ec, size_t n) mutable {
        if (st->destroyed) return;
        if (ec) {
          done(SocketError(ec, "read", /*mid_frame=*/st->in_end > st->in_start));
          return;
        }
        st->in_end += n;
        Pump(st, std::move(done));
      });
}

void RuntimeChannel::State::ReadBigBody(const std::shared_ptr<State>& st, FrameType type,
                                        uint32_t length, ReadDone done) {
  const size_t have = st->in_end - st->in_start - kFrameHeaderBytes;
  st->big_body.resize(length);
  std::memcpy(st->big_body.data(), st->inbuf.data() + st->in_start + kFrameHeaderBytes, have);
  st->in_start = st->in_end = 0;
  asio::async_read(st->socket, asio::buffer(st->big_body.data() + have, length - have),
                   [st, type, done = std::move(done)](const boost::system::error_code& ec, size_t) {
                     if (st->destroyed) return;
                     if (ec) {
                       done(SocketError(ec, "read", /*mid_frame=*/true));
                       return;
                     }
                     done(Frame{type, std::move(st->big_body)});
                   });
}

RuntimeChannel::RuntimeChannel(asio::io_context& io, int fd) : state_(std::make_shared<State>(io)) {
  boost::system::error_code ec;
  state_->socket.assign(stream_protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    state_->open_status =
        Status::IoError("control socket fd " + std::to_string(fd) + ": " + ec.message());
  }
}

RuntimeChannel::~RuntimeChannel() {
  state_->destroyed = true;
  boost::system::error_code ignored;
  state_->socket.close(ignored);
}

void RuntimeChannel::ReadFrame(std::function<void(Result<Frame>)> done) {
  std::shared_ptr<State> st = state_;
  if (State::CompleteIfUnusable(st, done)) return;
  if (st->in_end - st->in_start >= kFrameHeaderBytes) {
    // Bytes of the next frame are already buffered: complete via the executor,
    // never inside this call.
    asio::post(st->socket.get_executor(), [st, done = std::move(done)]() mutable {
      if (!st->destroyed) State::Pump(st, std::move(done));
    });
    return;
  }
  State::Pump(st, std::move(done));
}

void RuntimeChannel::Write(std::string bytes, std::function<void(Status)> done) {
  std::shared_ptr<State> st = state_;
  if (State::CompleteIfUnusable(st, done)) return;
  st->write_buf = std::move(bytes);
  asio::async_write(st->socket, asio::buffer(st->write_buf),
                    [st, done = std::move(done)](const boost::system::error_code& ec, size_t) {
                      if (st->destroyed) return;
                      done(ec ? SocketError(ec, "write", /*mid_frame=*/false) : Status::Ok());
                    });
}

void RuntimeChannel::Close() {
  state_->closed = true;
  boost::system::error_code ignored;
  state_->socket.close(ignored);
}

bool RuntimeChannel::is_open() const { return state_->socket.is_open(); }

}  // namespace gust::runtime

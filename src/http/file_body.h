// FileBody: a response body the HTTP server (server.h) streams from a file
// instead of holding it in the response's string, so an S3 object of any size
// (src/api/s3_api.h) is served in bounded memory.
//
//   http::Response r(status, 11);           // headers; the body stays empty
//   r.file_body = http::FileBody{owner, fd, offset, length};
//   responder.Send(std::move(r));
//
// The body is a field of http::Response (server.h), so it travels with the
// response wherever that is moved or copied (a handler's helpers, another
// thread) and nothing outside the response holds it. Send takes it out: the
// server sets Content-Length to `length`, writes the headers, then
// [offset, offset + length) of `fd`, 512 KB at a time as the client takes
// them (read with pread on the connection's thread: a page-cache read). A read
// error closes the connection (the client sees a short body). A response to
// HEAD carries only the length; an in-process Responder (its sink constructor)
// gets the bytes read whole into the body. `owner` keeps `fd` open until the
// write is over (or until the last copy of a response never sent is gone).
//
// Thread-safety: a FileBody is a value; pread on one fd from several threads
// is safe.
#pragma once

#include <cstdint>
#include <memory>

namespace gust::http {

struct FileBody {
  std::shared_ptr<void> owner;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

}  // namespace gust::http

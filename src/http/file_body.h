// FileBody: a response body the HTTP server (server.h) streams from a file
// instead of holding it in the response's string, so an S3 object of any size
// (src/api/s3_api.h) is served in bounded memory.
//
//   http::Response r(status, 11);           // headers; the body stays empty
//   http::AttachFileBody(&r, {owner, fd, offset, length});
//   responder.Send(std::move(r));
//
// Send takes the body back out: the server sets Content-Length to `length`,
// writes the headers, then [offset, offset + length) of `fd`, 512 KB at a time
// as the client takes them (read with pread on the connection's thread: a
// page-cache read). A read error closes the connection (the client sees a
// short body). A response to HEAD carries only the length; an in-process
// Responder (its sink constructor) gets the bytes read whole into the body.
// `owner` keeps `fd` open until the write is over.
//
// The response carries the attachment as an unguessable token in a header
// (x-gust-file-body) that the server removes before writing; a token it does
// not know (a function's answer relayed by the gateway, say) is removed and
// ignored. A response that is attached and then never sent keeps its file
// open: send every one.
//
// Thread-safety: AttachFileBody and Send may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "http/server.h"

namespace gust::http {

struct FileBody {
  std::shared_ptr<void> owner;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

void AttachFileBody(Response* response, FileBody body);
// The attachment of `response` (removing its header), if it has one: used by
// the server when the response is sent.
std::optional<FileBody> TakeFileBody(Response* response);

}  // namespace gust::http

// Test support for the fuzz targets: an HTTP request parsed from raw bytes
// the way http::Server parses a connection's bytes (Beast's request parser
// with the server's limits, eager body), fed in pieces as a socket delivers
// them.
//
// Thread-safety: reentrant.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>

#include "http/server.h"

namespace gust::fuzz {

// The request in `bytes`, delivered `piece` bytes at a time; nullopt when
// Beast refuses it (malformed, over a limit) or it is incomplete at EOF.
inline std::optional<http::Request> ParseRequest(std::string_view bytes, size_t piece) {
  namespace beast_http = http::beast_http;
  beast_http::request_parser<beast_http::string_body> parser;
  const http::ServerOptions limits;
  parser.body_limit(limits.max_body_bytes);
  parser.header_limit(limits.max_header_bytes);
  parser.eager(true);

  boost::beast::flat_buffer buffer;
  boost::beast::error_code ec;
  size_t fed = 0;
  while (!parser.is_done()) {
    if (fed < bytes.size()) {
      size_t n = std::min(piece, bytes.size() - fed);
      auto dest = buffer.prepare(n);
      std::memcpy(dest.data(), bytes.data() + fed, n);
      buffer.commit(n);
      fed += n;
    }
    size_t used = 0;
    if (buffer.size() > 0) {
      used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == beast_http::error::need_more) {
        ec = {};
      } else if (ec) {
        return std::nullopt;
      }
    }
    if (used == 0 && fed == bytes.size()) {
      // Nothing more will come: the client closed the connection (Beast's
      // read reports EOF before any byte itself; put_eof needs got_some()).
      if (!parser.got_some()) return std::nullopt;
      parser.put_eof(ec);
      if (ec || !parser.is_done()) return std::nullopt;
    }
  }
  return parser.release();
}

}  // namespace gust::fuzz

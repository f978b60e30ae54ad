// Identifiers: request ids (UUID v4, as Lambda's RequestId) and short random
// ids for sandboxes and jobs. Thread-safe: each thread has its own generator.
#pragma once

#include <string>

namespace gust {

// "3f1c9a2e-5b7d-4e21-9c0a-1b2c3d4e5f60"
std::string NewRequestId();
// A lowercase hex id of `bytes` random bytes (2*bytes characters).
std::string RandomHex(int bytes);

}  // namespace gust

// AWS Signature Version 4 (AWS4-HMAC-SHA256): the one implementation gust
// uses both to verify requests (the engine) and to sign them (the gust CLI;
// the Python client has its own few lines, python/gust/transport.py).
//
// The canonical request is AWS's, as botocore builds it for every service but
// S3 (botocore/auth.py, SigV4Auth), since boto3 and the aws CLI are the
// clients that matter:
//   - path: dot segments and empty segments removed (botocore's
//     remove_dot_segments), then every byte but A-Za-z0-9-_.~/ percent-encoded
//     (uppercase hex). The path on the wire is already encoded, so "%3A" in a
//     function ARN is signed as "%253A": botocore double-encodes, and so do we.
//   - query: each name and value percent-decoded and re-encoded with the same
//     rule ('/' encoded too; '+' is a literal plus), pairs sorted by name then
//     value; X-Amz-Signature is left out for presigned URLs.
//   - headers: the ones named in SignedHeaders, lowercase, values trimmed and
//     inner whitespace runs collapsed, repeated fields joined with ','. "host"
//     must be signed.
//   - payload: hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" when the request
//     carries x-amz-content-sha256: UNSIGNED-PAYLOAD (streamed bodies). An
//     x-amz-content-sha256 with a hash must match the body.
// The date is x-amz-date (ISO 8601 basic, UTC), or X-Amz-Date of a presigned
// URL; it must be within 15 minutes of the verifier's clock (presigned: not
// later than 15 minutes ahead, and not past X-Amz-Expires, at most 7 days).
//
// S3 (service "s3", the object API): the path is signed as sent, as
// botocore's S3SigV4Auth does, and a presigned URL signs UNSIGNED-PAYLOAD.
//
// Region: any (gust has none; the client's is taken from its credential
// scope). Service: the caller of Verify names the accepted ones; gust's APIs
// (Lambda's and /v1) accept "lambda", which is what gust's clients sign for.
//
// Errors: Verify returns the reason a request is refused as AWS words it
// (type for x-amzn-ErrorType, message); every refusal is an HTTP 403.
// Signatures are compared in constant time.
//
// Thread-safety: pure functions; a Verifier is immutable after construction
// and may be used from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/server.h"

namespace gust::http::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// What gust's clients sign for, and what its APIs accept.
inline constexpr const char* kService = "lambda";
// The object API's (src/api/s3_api.h): its requests are signed by S3's rules.
inline constexpr std::string_view kS3Service = "s3";
inline constexpr const char* kDefaultRegion = "us-east-1";
// AWS refuses a signature dated more than this far from its clock.
inline constexpr int64_t kMaxSkewS = 15 * 60;

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

// Hex SHA-256 of data (lowercase).
std::string Sha256Hex(std::string_view data);
// "20150830T123600Z" for epoch seconds, and back (nullopt if malformed).
std::string AmzDate(int64_t epoch_s);
std::optional<int64_t> ParseAmzDate(std::string_view text);

// The pieces of the canonical request (see the header comment).
std::string CanonicalUri(std::string_view raw_path);
std::string CanonicalQuery(std::string_view raw_query, bool presigned = false);
// Lowercase names; each value already joined and trimmed. In SignedHeaders order.
using HeaderList = std::vector<std::pair<std::string, std::string>>;
// s3: S3's rules (botocore's S3SigV4Auth): the path is signed as sent, with
// no dot-segment removal and no second encoding.
std::string CanonicalRequest(std::string_view method, std::string_view raw_target,
                             const HeaderList& signed_headers, std::string_view payload_hash,
                             bool presigned = false, bool s3 = false);
// Hex HMAC-SHA256 signature of canonical_request under the key derived from
// secret for date (YYYYMMDD), region and service.
std::string Signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view canonical_request);

// What a client adds to sign a request: X-Amz-Date, X-Amz-Content-Sha256
// and Authorization, signing host, those two and `extra` (e.g. content-type).
struct SignInput {
  std::string_view method;        // "GET"
  std::string_view target;        // as sent: "/2015-03-31/functions?MaxItems=1"
  std::string_view host;          // the Host header as sent: "127.0.0.1:7700"
  std::string_view payload_hash;  // Sha256Hex(body) or kUnsignedPayload
  HeaderList extra;               // other headers to sign, names in any case
  std::string region = kDefaultRegion;
  std::string service = kService;
  int64_t now_s = 0;
};
HeaderList Sign(const Credentials& credentials, const SignInput& input);

// Why a request was refused (HTTP 403).
struct Refusal {
  std::string type;  // "InvalidSignatureException"
  std::string message;
};

class Verifier {
 public:
  // now_s: the clock (tests inject one); default: the system clock.
  explicit Verifier(std::vector<Credentials> keys, std::function<int64_t()> now_s = {});
  // nullopt when req carries a valid signature of a known key for one of
  // `services`; else the reason.
  std::optional<Refusal> Verify(const Request& req, const std::vector<std::string>& services) const;

 private:
  std::map<std::string, std::string, std::less<>> secrets_;  // access key id -> secret
  std::function<int64_t()> now_s_;
};

}  // namespace gust::http::sigv4

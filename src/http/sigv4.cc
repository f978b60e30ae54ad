#include "http/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "common/clock.h"
#include "http/router.h"

namespace gust::http::sigv4 {

namespace {

constexpr int64_t kMaxPresignedExpiresS = 7 * 24 * 3600;
constexpr std::string_view kHexDigits = "0123456789abcdef";

std::string Hex(const unsigned char* data, size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kHexDigits[data[i] >> 4];
    out += kHexDigits[data[i] & 0xf];
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // HMAC only fails on allocation failure: fatal, like everywhere else.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len) == nullptr)
    std::abort();
  return std::string(reinterpret_cast<char*>(md), len);
}

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

// AWS's UriEncode: unreserved bytes kept, '/' kept if keep_slash, the rest %XX.
std::string UriEncode(std::string_view text, bool keep_slash) {
  static constexpr std::string_view kUpperHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kUpperHex[c >> 4];
      out += kUpperHex[c & 0xf];
    }
  }
  return out;
}

// RFC 3986 remove_dot_segments plus AWS's removal of empty segments, as
// botocore.utils.remove_dot_segments does it.
std::string RemoveDotSegments(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(start, slash - start);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!seg.empty() && seg != ".") {
      out.push_back(seg);
    }
    start = slash + 1;
  }
  std::string result = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i) result += '/';
    result += out[i];
  }
  if (path.back() == '/' && !out.empty()) result += '/';
  return result;
}

// "Trimall": no leading/trailing whitespace, inner runs as one space.
std::string TrimAll(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// The parsed signature, from the Authorization header or a presigned URL.
struct Parsed {
  std::string access_key;
  std::string date;  // YYYYMMDD of the credential scope
  std::string region;
  std::string service;
  std::string terminator;
  std::vector<std::string> signed_headers;
  std::string signature;
  std::string amz_date;  // ISO 8601 basic
  bool presigned = false;
  int64_t expires_s = 0;
};

Refusal Incomplete(std::string message) {
  return {"IncompleteSignatureException", std::move(message)};
}

// "AK/20150830/us-east-1/lambda/aws4_request"
std::optional<Refusal> ParseCredential(std::string_view credential, Parsed* p) {
  auto parts = Split(credential, '/');
  if (parts.size() != 5 || parts[0].empty()) {
    return Incomplete("Credential '" + std::string(credential) +
                      "' is not of the form <access key>/<YYYYMMDD>/<region>/<service>/"
                      "aws4_request");
  }
  p->access_key = parts[0];
  p->date = parts[1];
  p->region = parts[2];
  p->service = parts[3];
  p->terminator = parts[4];
  return std::nullopt;
}

std::optional<Refusal> ParseAuthorization(std::string_view header, Parsed* p) {
  header = Trim(header);
  size_t space = header.find(' ');
  std::string_view scheme = header.substr(0, space);
  if (scheme != kAlgorithm) {
    return Incomplete("Authorization scheme '" + std::string(scheme) +
                      "' is not supported: gust accepts AWS Signature Version 4 "
                      "(AWS4-HMAC-SHA256)");
  }
  if (space == std::string_view::npos) space = header.size();
  bool have_credential = false, have_headers = false, have_signature = false;
  for (std::string_view item : Split(header.substr(space), ',')) {
    item = Trim(item);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "Credential") {
      if (auto bad = ParseCredential(value, p)) return bad;
      have_credential = true;
    } else if (key == "SignedHeaders") {
      for (auto name : Split(value, ';')) p->signed_headers.push_back(Lower(name));
      have_headers = true;
    } else if (key == "Signature") {
      p->signature = value;
      have_signature = true;
    }
  }
  if (!have_credential || !have_headers || !have_signature) {
    return Incomplete(
        "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters: " +
        std::string(header.substr(0, 200)));
  }
  return std::nullopt;
}

std::optional<Refusal> ParsePresigned(const std::multimap<std::string, std::string>& q, Parsed* p) {
  auto get = [&q](const char* name) -> const std::string* {
    auto it = q.find(name);
    return it == q.end() ? nullptr : &it->second;
  };
  const std::string* algorithm = get("X-Amz-Algorithm");
  const std::string* credential = get("X-Amz-Credential");
  const std::string* date = get("X-Amz-Date");
  const std::string* expires = get("X-Amz-Expires");
  const std::string* headers = get("X-Amz-SignedHeaders");
  const std::string* signature = get("X-Amz-Signature");
  if (!algorithm || !credential || !date || !headers || !signature) {
    return Incomplete(
        "a presigned URL needs X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, "
        "X-Amz-SignedHeaders and X-Amz-Signature");
  }
  if (*algorithm != kAlgorithm) {
    return Incomplete("X-Amz-Algorithm '" + *algorithm + "' is not supported: use " +
                      std::string(kAlgorithm));
  }
  if (auto bad = ParseCredential(*credential, p)) return bad;
  for (auto name : Split(*headers, ';')) p->signed_headers.push_back(Lower(name));
  p->signature = *signature;
  p->amz_date = *date;
  p->presigned = true;
  p->expires_s = kMaxPresignedExpiresS;
  if (expires) {
    char* end = nullptr;
    long long v = std::strtoll(expires->c_str(), &end, 10);
    if (expires->empty() || *end != '\0' || v < 1 || v > kMaxPresignedExpiresS) {
      return Incomplete("X-Amz-Expires '" + *expires + "' must be 1 to " +
                        std::to_string(kMaxPresignedExpiresS) + " seconds");
    }
    p->expires_s = v;
  }
  return std::nullopt;
}

// AWS's own wording for a date outside the window.
std::optional<Refusal> CheckClock(const Parsed& p, int64_t signed_s, int64_t now_s) {
  if (p.presigned) {
    if (now_s > signed_s + p.expires_s) {
      return Refusal{"InvalidSignatureException",
                     "Signature expired: the presigned URL signed at " + p.amz_date +
                         " expired after " + std::to_string(p.expires_s) + " s (now " +
                         AmzDate(now_s) + ")"};
    }
  } else if (signed_s < now_s - kMaxSkewS) {
    return Refusal{"InvalidSignatureException",
                   "Signature expired: " + p.amz_date + " is now earlier than " +
                       AmzDate(now_s - kMaxSkewS) + " (" + AmzDate(now_s) + " - 15 min.)"};
  }
  if (signed_s > now_s + kMaxSkewS) {
    return Refusal{"InvalidSignatureException",
                   "Signature not yet current: " + p.amz_date + " is still later than " +
                       AmzDate(now_s + kMaxSkewS) + " (" + AmzDate(now_s) + " + 15 min.)"};
  }
  return std::nullopt;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return Hex(md, sizeof md);
}

std::string AmzDate(int64_t epoch_s) {
  std::time_t t = static_cast<std::time_t>(epoch_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::optional<int64_t> ParseAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return std::nullopt;
  auto num = [&text](size_t at, size_t len, int* out) {
    int v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  std::tm tm{};
  int year, month, day, hour, minute, second;
  if (!num(0, 4, &year) || !num(4, 2, &month) || !num(6, 2, &day) || !num(9, 2, &hour) ||
      !num(11, 2, &minute) || !num(13, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

std::string CanonicalUri(std::string_view raw_path) {
  return UriEncode(RemoveDotSegments(raw_path), /*keep_slash=*/true);
}

std::string CanonicalQuery(std::string_view raw_query, bool presigned) {
  if (raw_query.empty()) return "";
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::string_view item : Split(raw_query, '&')) {
    size_t eq = item.find('=');
    std::string name = PercentDecode(item.substr(0, eq));
    if (presigned && name == "X-Amz-Signature") continue;
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(item.substr(eq + 1));
    pairs.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

std::string CanonicalRequest(std::string_view method, std::string_view raw_target,
                             const HeaderList& signed_headers, std::string_view payload_hash,
                             bool presigned, bool s3) {
  size_t q = raw_target.find('?');
  std::string_view path = raw_target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? "" : raw_target.substr(q + 1);
  std::string out;
  out.reserve(256 + raw_target.size());
  out += method;
  out += '\n';
  // S3's canonical path is the path as sent (botocore's S3SigV4Auth).
  out += s3 ? std::string(path) : CanonicalUri(path);
  out += '\n';
  out += CanonicalQuery(query, presigned);
  out += '\n';
  std::string names;
  for (const auto& [name, value] : signed_headers) {
    out += name;
    out += ':';
    out += value;
    out += '\n';
    if (!names.empty()) names += ';';
    names += name;
  }
  out += '\n';
  out += names;
  out += '\n';
  out += payload_hash;
  return out;
}

std::string Signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view canonical_request) {
  std::string_view date = amz_date.substr(0, 8);
  std::string scope =
      std::string(date) + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  std::string to_sign = std::string(kAlgorithm) + "\n" + std::string(amz_date) + "\n" + scope +
                        "\n" + Sha256Hex(canonical_request);
  std::string key = Hmac("AWS4" + std::string(secret), date);
  key = Hmac(key, region);
  key = Hmac(key, service);
  key = Hmac(key, "aws4_request");
  std::string sig = Hmac(key, to_sign);
  return Hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

HeaderList Sign(const Credentials& credentials, const SignInput& input) {
  std::string amz_date = AmzDate(input.now_s);
  HeaderList headers = {{"host", TrimAll(input.host)},
                        {"x-amz-content-sha256", std::string(input.payload_hash)},
                        {"x-amz-date", amz_date}};
  for (const auto& [name, value] : input.extra) headers.emplace_back(Lower(name), TrimAll(value));
  std::sort(headers.begin(), headers.end());
  std::string canonical = CanonicalRequest(input.method, input.target, headers, input.payload_hash);
  std::string signature =
      Signature(credentials.secret_access_key, amz_date, input.region, input.service, canonical);
  std::string names;
  for (const auto& [name, value] : headers) names += (names.empty() ? "" : ";") + name;
  return {
      {"X-Amz-Date", amz_date},
      {"X-Amz-Content-Sha256", std::string(input.payload_hash)},
      {"Authorization", std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                            amz_date.substr(0, 8) + "/" + input.region + "/" + input.service +
                            "/aws4_request, SignedHeaders=" + names + ", Signature=" + signature}};
}

Verifier::Verifier(std::vector<Credentials> keys, std::function<int64_t()> now_s)
    : now_s_(std::move(now_s)) {
  for (auto& key : keys) secrets_[key.access_key_id] = std::move(key.secret_access_key);
  if (!now_s_) now_s_ = [] { return NowEpochMs() / 1000; };
}

std::optional<Refusal> Verifier::Verify(const Request& req,
                                        const std::vector<std::string>& services) const {
  Parsed p;
  std::string_view target = req.target();
  size_t q = target.find('?');
  auto authorization = req.find(beast_http::field::authorization);
  if (authorization != req.end()) {
    if (auto bad = ParseAuthorization(authorization->value(), &p)) return bad;
    auto date = req.find("x-amz-date");
    if (date == req.end()) {
      return Incomplete("Authorization header requires existence of an 'X-Amz-Date' header");
    }
    p.amz_date = Trim(date->value());
  } else if (q != std::string_view::npos &&
             target.find("X-Amz-Signature=", q) != std::string_view::npos) {
    if (auto bad = ParsePresigned(ParseQuery(target.substr(q + 1)), &p)) return bad;
  } else {
    return Refusal{"MissingAuthenticationTokenException", "Missing Authentication Token"};
  }

  auto secret = secrets_.find(p.access_key);
  if (secret == secrets_.end()) {
    return Refusal{"UnrecognizedClientException",
                   "The security token included in the request is invalid."};
  }
  if (p.terminator != "aws4_request") {
    return Incomplete("Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                      p.terminator + "'.");
  }
  if (std::find(services.begin(), services.end(), p.service) == services.end()) {
    return Refusal{"InvalidSignatureException",
                   "Credential should be scoped to correct service: '" +
                       (services.empty() ? std::string() : services.front()) + "', not '" +
                       p.service + "'."};
  }
  auto signed_s = ParseAmzDate(p.amz_date);
  if (!signed_s) {
    return Incomplete("X-Amz-Date '" + p.amz_date + "' must be in the ISO 8601 basic format " +
                      "YYYYMMDD'T'HHMMSS'Z'");
  }
  if (p.date != p.amz_date.substr(0, 8)) {
    return Refusal{"InvalidSignatureException",
                   "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                   "date from HTTP: '" +
                       p.date + "' != '" + p.amz_date.substr(0, 8) + "', from '" + p.amz_date +
                       "'."};
  }
  if (auto bad = CheckClock(p, *signed_s, now_s_())) return bad;
  if (std::find(p.signed_headers.begin(), p.signed_headers.end(), "host") ==
      p.signed_headers.end()) {
    return Incomplete("SignedHeaders must include 'host'");
  }

  HeaderList headers;
  headers.reserve(p.signed_headers.size());
  for (const std::string& name : p.signed_headers) {
    // Every field of that name, in the order received (Beast's own
    // equal_range may span other fields between the first and the last).
    std::string joined;
    bool first = true;
    for (const auto& field : req) {
      if (!boost::beast::iequals(field.name_string(), name)) continue;
      if (!first) joined += ',';
      joined += TrimAll(field.value());
      first = false;
    }
    headers.emplace_back(name, std::move(joined));
  }

  std::string payload_hash;
  auto declared = req.find("x-amz-content-sha256");
  const bool s3 = p.service == kS3Service;
  // A presigned S3 URL signs no payload (it is the receiver's to send).
  if ((declared != req.end() && Trim(declared->value()) == kUnsignedPayload) ||
      (s3 && p.presigned && declared == req.end())) {
    payload_hash = kUnsignedPayload;
  } else {
    payload_hash = Sha256Hex(req.body());
    if (declared != req.end() && Lower(Trim(declared->value())) != payload_hash) {
      return Refusal{"InvalidSignatureException",
                     "The provided 'x-amz-content-sha256' header does not match what was "
                     "computed (the SHA-256 of the body, or UNSIGNED-PAYLOAD)."};
    }
  }

  std::string expected = Signature(
      secret->second, p.amz_date, p.region, p.service,
      CanonicalRequest(req.method_string(), target, headers, payload_hash, p.presigned, s3));
  if (p.signature.size() != expected.size() ||
      CRYPTO_memcmp(p.signature.data(), expected.data(), expected.size()) != 0) {
    return Refusal{"InvalidSignatureException",
                   "The request signature we calculated does not match the signature you "
                   "provided. Check your AWS Secret Access Key and signing method. Consult the "
                   "service documentation for details."};
  }
  return std::nullopt;
}

}  // namespace gust::http::sigv4

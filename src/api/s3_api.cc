#include "api/s3_api.h"

#include <boost/asio/post.hpp>

#include <charconv>
#include <ctime>
#include <map>

#include "api/run_guarded.h"
#include "api/s3_xml.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/ids.h"

namespace gust::api {

namespace {

using beast_verb = http::beast_http::verb;
namespace field = http::beast_http;
constexpr std::string_view kXmlns = "http://s3.amazonaws.com/doc/2006-03-01/";
constexpr std::string_view kMetaPrefix = "x-amz-meta-";
// S3's default for an object stored without a Content-Type.
constexpr std::string_view kDefaultContentType = "binary/octet-stream";

int StatusOf(const std::string& code) {
  static const std::map<std::string, int, std::less<>> kStatus = {
      {"AccessDenied", 403},       {"SignatureDoesNotMatch", 403},
      {"InvalidAccessKeyId", 403}, {"RequestTimeTooSkewed", 403},
      {"NoSuchBucket", 404},       {"NoSuchKey", 404},
      {"NoSuchUpload", 404},       {"BucketAlreadyOwnedByYou", 409},
      {"BucketNotEmpty", 409},     {"InvalidRange", 416},
      {"NotImplemented", 501},     {"InternalError", 500},
      {"MethodNotAllowed", 405},
  };
  auto it = kStatus.find(code);
  return it == kStatus.end() ? 400 : it->second;
}

std::string XmlDocument(std::string_view root, const std::string& inner) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<" + std::string(root) + " xmlns=\"" +
         std::string(kXmlns) + "\">" + inner + "</" + std::string(root) + ">";
}

std::string Tag(std::string_view name, std::string_view text) {
  return "<" + std::string(name) + ">" + XmlEscape(text) + "</" + std::string(name) + ">";
}

http::Response XmlResponse(int status, std::string body) {
  http::Response r =
      http::MakeResponse(static_cast<field::status>(status), std::move(body), "application/xml");
  r.set("x-amz-request-id", RandomHex(8));
  return r;
}

http::Response Error(const std::string& code, const std::string& message,
                     const std::string& resource = "") {
  std::string inner = Tag("Code", code) + Tag("Message", message);
  if (!resource.empty()) inner += Tag("Resource", resource);
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>" + inner + "</Error>";
  return XmlResponse(StatusOf(code), std::move(body));
}

http::Response FromStatus(const Status& s, const std::string& resource = "") {
  return Error(S3ErrorCode(s), S3ErrorMessage(s), resource);
}

// RFC 7231's date for Last-Modified.
std::string HttpDate(int64_t epoch_ms) {
  time_t t = static_cast<time_t>(epoch_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

http::Response NotImplemented(const http::Request& req) {
  return Error("NotImplemented", "gust's S3 API does not implement " +
                                     std::string(req.method_string()) + " " +
                                     std::string(req.target()) + " (docs/STORAGE.md)");
}

std::string Quoted(const std::string& etag) { return "\"" + etag + "\""; }

// The request's Content-Type and x-amz-meta-* headers.
ObjectAttributes AttributesOf(const http::Request& req) {
  ObjectAttributes attrs;
  auto ct = req.find(field::field::content_type);
  attrs.content_type =
      ct == req.end() ? std::string(kDefaultContentType) : std::string(ct->value());
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (name.rfind(kMetaPrefix, 0) == 0 && name.size() > kMetaPrefix.size()) {
      attrs.metadata[name.substr(kMetaPrefix.size())] = std::string(f.value());
    }
  }
  return attrs;
}

void SetObjectHeaders(const ObjectInfo& info, http::Response* r) {
  r->set(field::field::etag, Quoted(info.etag));
  r->set(field::field::last_modified, HttpDate(info.modified_ms));
  r->set(field::field::content_type,
         info.content_type.empty() ? std::string(kDefaultContentType) : info.content_type);
  r->set(field::field::accept_ranges, "bytes");
  for (const auto& [name, value] : info.metadata) r->set(std::string(kMetaPrefix) + name, value);
}

bool ParseUint(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && p == text.data() + text.size();
}

// A "bytes=first-last" range against size: nullopt to serve the whole object
// (no header, or one HTTP says to ignore: not bytes, several ranges, not
// numbers); {1, 0} when it cannot be satisfied.
std::optional<std::pair<uint64_t, uint64_t>> ParseRange(std::string_view spec, uint64_t size,
                                                        bool* unsatisfiable) {
  *unsatisfiable = false;
  if (spec.rfind("bytes=", 0) != 0) return std::nullopt;
  spec.remove_prefix(6);
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // the last b bytes
    if (!ParseUint(b, &last)) return std::nullopt;
    if (last == 0 || size == 0) {
      *unsatisfiable = true;
      return std::nullopt;
    }
    return std::make_pair(size - std::min(last, size), size - 1);
  }
  if (!ParseUint(a, &first)) return std::nullopt;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!ParseUint(b, &last) || last < first) {
    return std::nullopt;
  }
  if (first >= size) {
    *unsatisfiable = true;
    return std::nullopt;
  }
  return std::make_pair(first, std::min(last, size - 1));
}

std::string Iso(int64_t ms) { return FormatIso8601(ms); }

// "/bucket/key?versionId=..." (or without the leading slash), percent-encoded.
bool ParseCopySource(std::string_view value, std::string* bucket, std::string* key) {
  std::string decoded = http::PercentDecode(value.substr(0, value.find('?')));
  std::string_view v = decoded;
  if (!v.empty() && v.front() == '/') v.remove_prefix(1);
  size_t slash = v.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == v.size()) return false;
  *bucket = std::string(v.substr(0, slash));
  *key = std::string(v.substr(slash + 1));
  return true;
}

std::string MaybeUrlEncode(const std::string& text, bool url) {
  if (!url) return text;
  // S3's encoding-type=url keeps '/' readable; clients decode with unquote.
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t slash = text.find('/', start);
    out += http::PercentEncode(text.substr(start, slash - start));
    if (slash == std::string::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

std::string QueryOr(const http::RouteMatch& m, const std::string& name, std::string fallback = "") {
  auto it = m.query.find(name);
  return it == m.query.end() ? fallback : it->second;
}

bool Has(const http::RouteMatch& m, const std::string& name) { return m.query.count(name) > 0; }

// Why grants refuse a request on bucket (its copy source included), or nullopt.
std::optional<std::string> GrantRefusal(const http::Request& req, const std::string& bucket,
                                        const BucketGrants& grants) {
  const std::string held = "[" + JoinBucketGrants(grants) + "]";
  const std::string how =
      " (a map's buckets, a function's gust deploy --bucket; docs/STORAGE.md, \"From a "
      "function\")";
  const bool write = req.method() != beast_verb::get && req.method() != beast_verb::head;
  switch (AccessTo(grants, bucket)) {
    case BucketAccess::kNone:
      return "bucket '" + bucket + "' is not granted to this sandbox, whose grants are " + held +
             how;
    case BucketAccess::kRead:
      if (write) {
        return "bucket '" + bucket +
               "' is granted read-only to this sandbox: " + std::string(req.method_string()) +
               " is a write" + how;
      }
      break;
    case BucketAccess::kReadWrite:
      break;
  }
  auto source = req.find("x-amz-copy-source");
  std::string source_bucket, source_key;
  if (source != req.end() && ParseCopySource(source->value(), &source_bucket, &source_key) &&
      AccessTo(grants, source_bucket) == BucketAccess::kNone) {
    return "copy source bucket '" + source_bucket +
           "' is not granted to this sandbox, whose grants are " + held + how;
  }
  return std::nullopt;
}

}  // namespace

struct S3Api::Call {
  std::string bucket;
  std::string key;
  http::RouteMatch q;  // query only
  std::string resource;
};

S3Api::S3Api(ObjectStore& store, const http::sigv4::Verifier* verifier)
    : store_(store), verifier_(verifier) {}

S3Api::~S3Api() { pool_.join(); }

bool S3Api::Accepts(const http::Request& req) {
  std::string_view target = req.target();
  if (target.rfind(kS3Prefix, 0) != 0) return false;
  std::string_view rest = target.substr(kS3Prefix.size());
  return rest.empty() || rest.front() == '/' || rest.front() == '?';
}

http::Response S3Api::AccessDenied(const std::string& message) {
  return Error("AccessDenied", message);
}

void S3Api::HandleGranted(http::Request&& req, http::Responder responder, BucketGrants grants) {
  auto shared = std::make_shared<http::Request>(std::move(req));
  auto held = std::make_shared<const BucketGrants>(std::move(grants));
  PostGuarded(pool_, responder,
              [this, shared, held, responder] { responder.Send(Dispatch(*shared, held.get())); });
}

void S3Api::Handle(http::Request&& req, http::Responder responder) {
  if (verifier_ != nullptr) {
    static const std::vector<std::string> kServices = {"s3"};
    if (auto refusal = verifier_->Verify(req, kServices)) {
      const std::string code =
          refusal->type == "InvalidSignatureException"     ? "SignatureDoesNotMatch"
          : refusal->type == "UnrecognizedClientException" ? "InvalidAccessKeyId"
                                                           : "AccessDenied";
      responder.Send(Error(code, refusal->message));
      return;
    }
  }
  // A body may be ~100 MB: it moves to the pool with the request.
  auto shared = std::make_shared<http::Request>(std::move(req));
  PostGuarded(pool_, responder,
              [this, shared, responder] { responder.Send(Dispatch(*shared, nullptr)); });
}

http::Response S3Api::Dispatch(const http::Request& req, const BucketGrants* grants) {
  std::string_view target = req.target();
  target.remove_prefix(kS3Prefix.size());
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  Call c;
  if (qmark != std::string_view::npos) {
    for (auto& [name, value] : http::ParseQuery(target.substr(qmark + 1))) {
      c.q.query[name] = value;
    }
  }
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  size_t slash = path.find('/');
  c.bucket = http::PercentDecode(path.substr(0, slash));
  if (slash != std::string_view::npos) c.key = http::PercentDecode(path.substr(slash + 1));
  c.resource = "/" + c.bucket + (c.key.empty() ? "" : "/" + c.key);
  const beast_verb method = req.method();

  if (grants != nullptr && !c.bucket.empty()) {
    if (auto refusal = GrantRefusal(req, c.bucket, *grants)) {
      return Error("AccessDenied", *refusal, c.resource);
    }
  }
  if (c.bucket.empty()) {
    if (method == beast_verb::get) return ListBuckets(c, grants);
    return Error("MethodNotAllowed", "The specified method is not allowed against this resource.");
  }
  if (c.key.empty()) return BucketOp(req, c);
  // An object's subresources: its tags are read as none (aws CLI v2 asks before a copy); the
  // others are not kept, and must not be mistaken for the object itself.
  if (Has(c.q, "tagging") && method == beast_verb::get) {
    auto reader = store_.Open(c.bucket, c.key);
    if (!reader.ok()) return FromStatus(reader.status(), c.resource);
    return XmlResponse(200, XmlDocument("Tagging", "<TagSet></TagSet>"));
  }
  for (const char* sub : {"tagging", "acl", "retention", "legal-hold", "attributes", "torrent",
                          "restore", "select"}) {
    if (Has(c.q, sub)) return NotImplemented(req);
  }
  switch (method) {
    case beast_verb::put:
      if (Has(c.q, "uploadId")) return UploadPart(req, c);
      if (req.find("x-amz-copy-source") != req.end()) return CopyObject(req, c);
      return PutObject(req, c);
    case beast_verb::get:
      if (Has(c.q, "uploadId")) return ListParts(c);
      return GetObject(req, c, /*head=*/false);
    case beast_verb::head:
      return GetObject(req, c, /*head=*/true);
    case beast_verb::delete_:
      if (Has(c.q, "uploadId")) {
        Status s = store_.AbortUpload(c.bucket, c.key, QueryOr(c.q, "uploadId"));
        if (!s.ok()) return FromStatus(s, c.resource);
        return XmlResponse(204, "");
      } else {
        Status s = store_.DeleteObject(c.bucket, c.key);
        if (!s.ok()) return FromStatus(s, c.resource);
        return XmlResponse(204, "");
      }
    case beast_verb::post:
      if (Has(c.q, "uploads")) {
        auto id = store_.CreateUpload(c.bucket, c.key, AttributesOf(req));
        if (!id.ok()) return FromStatus(id.status(), c.resource);
        return XmlResponse(
            200, XmlDocument("InitiateMultipartUploadResult",
                             Tag("Bucket", c.bucket) + Tag("Key", c.key) + Tag("UploadId", *id)));
      }
      if (Has(c.q, "uploadId")) return CompleteUpload(req, c);
      break;
    default:
      break;
  }
  return NotImplemented(req);
}

http::Response S3Api::ListBuckets(const Call&, const BucketGrants* grants) {
  auto buckets = store_.ListBuckets();
  if (!buckets.ok()) return FromStatus(buckets.status());
  std::string inner = "<Owner><ID>gust</ID><DisplayName>gust</DisplayName></Owner><Buckets>";
  for (const BucketInfo& b : *buckets) {
    if (grants != nullptr && AccessTo(*grants, b.name) == BucketAccess::kNone) continue;
    inner +=
        "<Bucket>" + Tag("Name", b.name) + Tag("CreationDate", Iso(b.created_ms)) + "</Bucket>";
  }
  inner += "</Buckets>";
  return XmlResponse(200, XmlDocument("ListAllMyBucketsResult", inner));
}

http::Response S3Api::BucketOp(const http::Request& req, const Call& c) {
  switch (req.method()) {
    case beast_verb::put: {
      if (!c.q.query.empty()) break;  // bucket configuration (ACLs, tags...): not kept
      Status s = store_.CreateBucket(c.bucket);
      if (!s.ok()) return FromStatus(s, c.resource);
      http::Response r = XmlResponse(200, "");
      r.set(field::field::location, "/" + c.bucket);
      return r;
    }
    case beast_verb::head: {
      Status s = store_.HeadBucket(c.bucket);
      if (!s.ok()) return FromStatus(s, c.resource);
      http::Response r = XmlResponse(200, "");
      r.set("x-amz-bucket-region", http::sigv4::kDefaultRegion);
      return r;
    }
    case beast_verb::delete_: {
      Status s = store_.DeleteBucket(c.bucket);
      if (!s.ok()) return FromStatus(s, c.resource);
      return XmlResponse(204, "");
    }
    case beast_verb::get:
      if (Has(c.q, "location")) {
        Status s = store_.HeadBucket(c.bucket);
        if (!s.ok()) return FromStatus(s, c.resource);
        // us-east-1 is S3's empty LocationConstraint.
        return XmlResponse(200, XmlDocument("LocationConstraint", ""));
      }
      if (Has(c.q, "uploads") || Has(c.q, "versions") || Has(c.q, "policy") || Has(c.q, "acl") ||
          Has(c.q, "tagging")) {
        break;
      }
      return ListObjects(c, QueryOr(c.q, "list-type") == "2");
    case beast_verb::post:
      if (Has(c.q, "delete")) return DeleteObjects(req, c);
      break;
    default:
      break;
  }
  return NotImplemented(req);
}

http::Response S3Api::ListObjects(const Call& c, bool v2) {
  ListOptions options;
  options.prefix = QueryOr(c.q, "prefix");
  options.delimiter = QueryOr(c.q, "delimiter");
  std::string max_keys = QueryOr(c.q, "max-keys", "1000");
  uint64_t n = 0;
  if (!ParseUint(max_keys, &n)) {
    return Error("InvalidArgument",
                 "max-keys must be a non-negative integer, not '" + max_keys + "'");
  }
  options.max_keys = static_cast<int>(std::min<uint64_t>(n, 1000));
  const std::string encoding = QueryOr(c.q, "encoding-type");
  if (!encoding.empty() && encoding != "url") {
    return Error("InvalidArgument",
                 "Invalid Encoding Method specified in Request: '" + encoding + "'");
  }
  const bool url = encoding == "url";
  std::string token;
  if (v2) {
    options.after = QueryOr(c.q, "start-after");
    if (Has(c.q, "continuation-token")) {
      auto decoded = Base64Decode(QueryOr(c.q, "continuation-token"));
      if (!decoded.ok() || decoded->empty()) {
        return Error("InvalidArgument", "The continuation token provided is incorrect");
      }
      token = QueryOr(c.q, "continuation-token");
      options.after = std::max(options.after, *decoded);
    }
  } else {
    options.after = QueryOr(c.q, "marker");
  }
  auto listed = store_.List(c.bucket, options);
  if (!listed.ok()) return FromStatus(listed.status(), c.resource);
  std::string inner = Tag("Name", c.bucket) + Tag("Prefix", MaybeUrlEncode(options.prefix, url));
  if (v2) {
    inner += Tag("StartAfter", MaybeUrlEncode(QueryOr(c.q, "start-after"), url));
    if (!token.empty()) inner += Tag("ContinuationToken", token);
    inner +=
        Tag("KeyCount", std::to_string(listed->objects.size() + listed->common_prefixes.size()));
  } else {
    inner += Tag("Marker", MaybeUrlEncode(options.after, url));
  }
  inner += Tag("MaxKeys", std::to_string(options.max_keys));
  if (!options.delimiter.empty()) inner += Tag("Delimiter", MaybeUrlEncode(options.delimiter, url));
  if (url) inner += Tag("EncodingType", "url");
  inner += Tag("IsTruncated", listed->truncated ? "true" : "false");
  if (listed->truncated) {
    if (v2) {
      inner += Tag("NextContinuationToken", Base64Encode(listed->last));
    } else if (!options.delimiter.empty()) {
      inner += Tag("NextMarker", MaybeUrlEncode(listed->last, url));
    }
  }
  for (const ObjectInfo& o : listed->objects) {
    inner += "<Contents>" + Tag("Key", MaybeUrlEncode(o.key, url)) +
             Tag("LastModified", Iso(o.modified_ms)) + Tag("ETag", Quoted(o.etag)) +
             Tag("Size", std::to_string(o.size)) + Tag("StorageClass", "STANDARD") + "</Contents>";
  }
  for (const std::string& p : listed->common_prefixes) {
    inner += "<CommonPrefixes>" + Tag("Prefix", MaybeUrlEncode(p, url)) + "</CommonPrefixes>";
  }
  return XmlResponse(200, XmlDocument("ListBucketResult", inner));
}

http::Response S3Api::DeleteObjects(const http::Request& req, const Call& c) {
  auto parsed = ParseDeleteObjects(req.body());
  if (!parsed.ok()) return FromStatus(parsed.status(), c.resource);
  Status bucket = store_.HeadBucket(c.bucket);
  if (!bucket.ok()) return FromStatus(bucket, c.resource);
  std::string inner;
  for (const std::string& key : parsed->keys) {
    Status s = store_.DeleteObject(c.bucket, key);
    if (s.ok()) {
      if (!parsed->quiet) inner += "<Deleted>" + Tag("Key", key) + "</Deleted>";
    } else {
      inner += "<Error>" + Tag("Key", key) + Tag("Code", S3ErrorCode(s)) +
               Tag("Message", S3ErrorMessage(s)) + "</Error>";
    }
  }
  return XmlResponse(200, XmlDocument("DeleteResult", inner));
}

namespace {

// Content-MD5, when sent, must be the body's (base64 of the binary MD5).
std::optional<http::Response> CheckContentMd5(const http::Request& req) {
  auto md5 = req.find(field::field::content_md5);
  if (md5 == req.end()) return std::nullopt;
  auto raw = Base64Decode(md5->value());
  if (!raw.ok() || raw->size() != 16) {
    return Error("InvalidDigest", "The Content-MD5 you specified is not valid.");
  }
  auto want = HexDecode(Md5Hex(req.body()));
  if (!want.ok() || *want != *raw) {
    return Error("BadDigest", "The Content-MD5 you specified did not match what we received.");
  }
  return std::nullopt;
}

}  // namespace

http::Response S3Api::PutObject(const http::Request& req, const Call& c) {
  if (auto bad = CheckContentMd5(req)) return *bad;
  auto info = store_.PutObject(c.bucket, c.key, req.body(), AttributesOf(req));
  if (!info.ok()) return FromStatus(info.status(), c.resource);
  http::Response r = XmlResponse(200, "");
  r.set(field::field::etag, Quoted(info->etag));
  return r;
}

http::Response S3Api::CopyObject(const http::Request& req, const Call& c) {
  std::string src_bucket, src_key;
  if (!ParseCopySource(req["x-amz-copy-source"], &src_bucket, &src_key)) {
    return Error("InvalidArgument",
                 "Copy Source must mention the source bucket and key: "
                 "sourcebucket/sourcekey");
  }
  std::string directive(req["x-amz-metadata-directive"]);
  if (!directive.empty() && directive != "COPY" && directive != "REPLACE") {
    return Error("InvalidArgument", "Unknown metadata directive: '" + directive + "'");
  }
  ObjectAttributes attrs = AttributesOf(req);
  if (src_bucket == c.bucket && src_key == c.key && directive != "REPLACE") {
    return Error("InvalidRequest",
                 "This copy request is illegal because it is trying to copy an object to itself "
                 "without changing the object's metadata, storage class, website redirect "
                 "location or encryption attributes.");
  }
  auto info = store_.CopyObject(src_bucket, src_key, c.bucket, c.key,
                                directive == "REPLACE" ? &attrs : nullptr);
  if (!info.ok()) return FromStatus(info.status(), c.resource);
  return XmlResponse(200,
                     XmlDocument("CopyObjectResult", Tag("LastModified", Iso(info->modified_ms)) +
                                                         Tag("ETag", Quoted(info->etag))));
}

http::Response S3Api::GetObject(const http::Request& req, const Call& c, bool head) {
  auto reader = store_.Open(c.bucket, c.key);
  if (!reader.ok()) return FromStatus(reader.status(), c.resource);
  const ObjectInfo& info = (*reader)->info();
  uint64_t first = 0, length = info.size;
  bool partial = false;
  auto range_header = req.find(field::field::range);
  if (range_header != req.end()) {
    bool unsatisfiable = false;
    auto range = ParseRange(range_header->value(), info.size, &unsatisfiable);
    if (unsatisfiable) {
      http::Response r =
          Error("InvalidRange", "The requested range is not satisfiable", c.resource);
      r.set(field::field::content_range, "bytes */" + std::to_string(info.size));
      return r;
    }
    if (range) {
      partial = true;
      first = range->first;
      length = range->second - range->first + 1;
    }
  }
  http::Response r(partial ? field::status::partial_content : field::status::ok, 11);
  SetObjectHeaders(info, &r);
  r.set("x-amz-request-id", RandomHex(8));
  if (partial) {
    r.set(field::field::content_range, "bytes " + std::to_string(first) + "-" +
                                           std::to_string(first + length - 1) + "/" +
                                           std::to_string(info.size));
  }
  if (head) {
    r.content_length(length);  // http::PrepareResponse keeps it for HEAD
    return r;
  }
  // The bytes go from the file to the socket a piece at a time (http/file_body.h).
  std::shared_ptr<ObjectReader> owner = std::move(reader).value();
  r.file_body =
      http::FileBody{.fd = owner->fd(), .offset = owner->data_offset() + first, .length = length};
  r.file_body->owner = std::move(owner);
  return r;
}

http::Response S3Api::UploadPart(const http::Request& req, const Call& c) {
  uint64_t number = 0;
  std::string text = QueryOr(c.q, "partNumber");
  if (!ParseUint(text, &number) || number < 1 || number > kMaxPartNumber) {
    return Error(
        "InvalidArgument",
        "Part number must be an integer between 1 and 10000, inclusive, not '" + text + "'");
  }
  const std::string upload_id = QueryOr(c.q, "uploadId");
  auto source = req.find("x-amz-copy-source");
  if (source == req.end()) {
    if (auto bad = CheckContentMd5(req)) return *bad;
    auto etag = store_.PutPart(c.bucket, c.key, upload_id, static_cast<int>(number), req.body());
    if (!etag.ok()) return FromStatus(etag.status(), c.resource);
    http::Response r = XmlResponse(200, "");
    r.set(field::field::etag, Quoted(*etag));
    return r;
  }
  // UploadPartCopy: a range of another object becomes the part.
  std::string src_bucket, src_key;
  if (!ParseCopySource(source->value(), &src_bucket, &src_key)) {
    return Error("InvalidArgument",
                 "Copy Source must mention the source bucket and key: "
                 "sourcebucket/sourcekey");
  }
  auto reader = store_.Open(src_bucket, src_key);
  if (!reader.ok()) return FromStatus(reader.status(), c.resource);
  uint64_t size = (*reader)->info().size;
  uint64_t first = 0, length = size;
  auto range_header = req.find("x-amz-copy-source-range");
  if (range_header != req.end()) {
    bool unsatisfiable = false;
    auto range = ParseRange(range_header->value(), size, &unsatisfiable);
    if (!range) {
      return Error("InvalidRange",
                   "The x-amz-copy-source-range is not a satisfiable range "
                   "bytes=first-last of the source");
    }
    first = range->first;
    length = range->second - range->first + 1;
  }
  auto data = (*reader)->Read(first, length);
  if (!data.ok()) return FromStatus(data.status(), c.resource);
  auto etag = store_.PutPart(c.bucket, c.key, upload_id, static_cast<int>(number), *data);
  if (!etag.ok()) return FromStatus(etag.status(), c.resource);
  return XmlResponse(200, XmlDocument("CopyPartResult", Tag("LastModified", Iso(NowEpochMs())) +
                                                            Tag("ETag", Quoted(*etag))));
}

http::Response S3Api::ListParts(const Call& c) {
  const std::string upload_id = QueryOr(c.q, "uploadId");
  auto parts = store_.ListParts(c.bucket, c.key, upload_id);
  if (!parts.ok()) return FromStatus(parts.status(), c.resource);
  std::string inner = Tag("Bucket", c.bucket) + Tag("Key", c.key) + Tag("UploadId", upload_id) +
                      Tag("StorageClass", "STANDARD") + Tag("PartNumberMarker", "0") +
                      Tag("MaxParts", "10000") + Tag("IsTruncated", "false");
  if (!parts->empty()) inner += Tag("NextPartNumberMarker", std::to_string(parts->back().number));
  for (const PartInfo& p : *parts) {
    inner += "<Part>" + Tag("PartNumber", std::to_string(p.number)) +
             Tag("LastModified", Iso(p.modified_ms)) + Tag("ETag", Quoted(p.etag)) +
             Tag("Size", std::to_string(p.size)) + "</Part>";
  }
  return XmlResponse(200, XmlDocument("ListPartsResult", inner));
}

http::Response S3Api::CompleteUpload(const http::Request& req, const Call& c) {
  auto parts = ParseCompleteMultipartUpload(req.body());
  if (!parts.ok()) return FromStatus(parts.status(), c.resource);
  auto info = store_.CompleteUpload(c.bucket, c.key, QueryOr(c.q, "uploadId"), *parts);
  if (!info.ok()) return FromStatus(info.status(), c.resource);
  return XmlResponse(200, XmlDocument("CompleteMultipartUploadResult",
                                      Tag("Location", c.resource) + Tag("Bucket", c.bucket) +
                                          Tag("Key", c.key) + Tag("ETag", Quoted(info->etag))));
}

}  // namespace gust::api

// S3Api: an S3-compatible object API on the engine's port, path-style under
// /s3 (docs/STORAGE.md): boto3 and both aws CLIs reach it with
// endpoint_url=http://127.0.0.1:7700/s3 and no other setting.
//
//   GET    /s3                               ListBuckets
//   PUT    /s3/{bucket}                      CreateBucket
//   HEAD   /s3/{bucket}                      HeadBucket
//   DELETE /s3/{bucket}                      DeleteBucket (BucketNotEmpty)
//   GET    /s3/{bucket}?list-type=2&...      ListObjectsV2 (prefix, delimiter,
//                                            continuation-token, start-after, max-keys,
//                                            encoding-type=url); without list-type: ListObjects
//   GET    /s3/{bucket}?location             GetBucketLocation
//   POST   /s3/{bucket}?delete               DeleteObjects
//   PUT    /s3/{bucket}/{key}                PutObject; with x-amz-copy-source: CopyObject
//   GET    /s3/{bucket}/{key}                GetObject (Range)
//   HEAD   /s3/{bucket}/{key}                HeadObject
//   DELETE /s3/{bucket}/{key}                DeleteObject
//   POST   /s3/{bucket}/{key}?uploads        CreateMultipartUpload
//   PUT    /s3/{bucket}/{key}?partNumber=N&uploadId=U   UploadPart (UploadPartCopy with
//                                            x-amz-copy-source[-range])
//   GET    /s3/{bucket}/{key}?uploadId=U     ListParts
//   POST   /s3/{bucket}/{key}?uploadId=U     CompleteMultipartUpload
//   DELETE /s3/{bucket}/{key}?uploadId=U     AbortMultipartUpload
//
// Authentication: the engine's credentials, SigV4 scoped to service "s3"
// (src/http/sigv4.h: S3's canonical path, signed or UNSIGNED-PAYLOAD bodies);
// anonymous when the engine has none. Errors are S3's XML documents
// (<Error><Code>NoSuchKey</Code>...) with S3's status codes; anything else
// gets 501 NotImplemented naming the operation.
//
// The sandbox channel (api/channel_api.h) hands its /s3 requests to
// HandleGranted with the asking sandbox's bucket grants (store/bucket_grants.h):
// no signature is checked there (the peer's identity is the credential); a
// bucket the grants do not name is 403 AccessDenied whether it exists or not,
// as is a write (PUT, POST, DELETE) to a read-only grant and a copy whose
// source bucket is not granted; ListBuckets lists only the granted buckets
// that exist. docs/STORAGE.md, "From a function".
//
// Bodies: a request body is whole in memory (the server's 100 MB limit; the
// clients' multipart parts are 8 MB); a GET streams the object (or its range)
// from its file, 512 KB at a time (http/file_body.h); docs/STORAGE.md "Limits".
//
// Thread-safety: Handle is called on the engine thread; the work runs on the
// API's own pool (4 threads), so large copies do not hold up the management
// calls on the shared workers.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <optional>
#include <string>

#include "http/router.h"
#include "http/server.h"
#include "http/sigv4.h"
#include "store/bucket_grants.h"
#include "store/object_store.h"

namespace gust::api {

// The path prefix the API is served under.
inline constexpr std::string_view kS3Prefix = "/s3";

class S3Api {
 public:
  // verifier: null when the engine runs without credentials.
  S3Api(ObjectStore& store, const http::sigv4::Verifier* verifier);
  ~S3Api();
  // Whether the request is for this API (its path is /s3 or under /s3/).
  static bool Accepts(const http::Request& req);
  void Handle(http::Request&& req, http::Responder responder);
  // A sandbox's request, limited to grants (above).
  void HandleGranted(http::Request&& req, http::Responder responder, BucketGrants grants);
  // S3's 403 AccessDenied error document.
  static http::Response AccessDenied(const std::string& message);

 private:
  struct Call;  // one parsed request
  // grants: null on the TCP port (everything), else the sandbox's.
  http::Response Dispatch(const http::Request& req, const BucketGrants* grants);
  http::Response ListBuckets(const Call& c, const BucketGrants* grants);
  http::Response BucketOp(const http::Request& req, const Call& c);
  http::Response ListObjects(const Call& c, bool v2);
  http::Response DeleteObjects(const http::Request& req, const Call& c);
  http::Response PutObject(const http::Request& req, const Call& c);
  http::Response CopyObject(const http::Request& req, const Call& c);
  http::Response GetObject(const http::Request& req, const Call& c, bool head);
  http::Response UploadPart(const http::Request& req, const Call& c);
  http::Response ListParts(const Call& c);
  http::Response CompleteUpload(const http::Request& req, const Call& c);

  ObjectStore& store_;
  const http::sigv4::Verifier* verifier_;
  boost::asio::thread_pool pool_{4};
};

}  // namespace gust::api

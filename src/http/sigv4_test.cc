#include "http/sigv4.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace gust::http::sigv4 {
namespace {

using beast_http::verb;

// The aws-sig-v4-test-suite's fixed values.
constexpr const char* kSuiteKey = "AKIDEXAMPLE";
constexpr const char* kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* kSuiteDate = "20150830T123600Z";
constexpr const char* kSuiteScope = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

int64_t SuiteNow() { return *ParseAmzDate(kSuiteDate); }

Verifier SuiteVerifier(int64_t now_offset_s = 0) {
  return Verifier({{kSuiteKey, kSuiteSecret}},
                  [now_offset_s] { return SuiteNow() + now_offset_s; });
}

Request SuiteRequest(verb method, const std::string& target, const std::string& signature,
                     const std::string& key = kSuiteKey) {
  Request req(method, target, 11);
  req.set(beast_http::field::host, "example.amazonaws.com");
  req.set("X-Amz-Date", kSuiteDate);
  req.set(beast_http::field::authorization,
          "AWS4-HMAC-SHA256 Credential=" + key +
              "/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
              "Signature=" +
              signature);
  return req;
}

const std::vector<std::string> kSuiteService = {"service"};

// Published vectors: the signature in the suite's .authz file must verify.
TEST(SigV4Suite, PublishedVectorsVerify) {
  struct Case {
    const char* name;
    verb method;
    const char* target;
    const char* signature;
  } cases[] = {
      {"get-vanilla", verb::get, "/",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"post-vanilla", verb::post, "/",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"get-vanilla-query-order-key-case", verb::get, "/?Param2=value2&Param1=value1",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
  };
  Verifier verifier = SuiteVerifier();
  for (const Case& c : cases) {
    auto refusal = verifier.Verify(SuiteRequest(c.method, c.target, c.signature), kSuiteService);
    EXPECT_FALSE(refusal.has_value())
        << c.name << ": " << refusal->type << ": " << refusal->message;
  }
}

TEST(SigV4Suite, GetVanillaCanonicalRequestAndSignature) {
  HeaderList headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", kSuiteDate}};
  std::string canonical = CanonicalRequest("GET", "/", headers, Sha256Hex(""));
  EXPECT_EQ(canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Signature(kSuiteSecret, kSuiteDate, "us-east-1", "service", canonical),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Canonical, PathIsNormalizedAndEncodedLikeBotocore) {
  EXPECT_EQ(CanonicalUri(""), "/");
  EXPECT_EQ(CanonicalUri("/./"), "/");
  EXPECT_EQ(CanonicalUri("//example//"), "/example/");
  EXPECT_EQ(CanonicalUri("/example/.."), "/");
  EXPECT_EQ(CanonicalUri("/a/b/../c"), "/a/c");
  // The wire path is already encoded: its '%' is encoded again.
  EXPECT_EQ(CanonicalUri("/2015-03-31/functions/arn%3Aaws%3Alambda/invocations"),
            "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations");
  EXPECT_EQ(CanonicalUri("/-._~AZaz09"), "/-._~AZaz09");
}

TEST(SigV4Canonical, QueryIsDecodedReencodedAndSorted) {
  EXPECT_EQ(CanonicalQuery("b=2&a=1&a=0"), "a=0&a=1&b=2");
  EXPECT_EQ(CanonicalQuery("Param1=value1&Param1=Value2"), "Param1=Value2&Param1=value1");
  EXPECT_EQ(CanonicalQuery("k=a%20b&x=%7e&y=/"), "k=a%20b&x=~&y=%2F");
  EXPECT_EQ(CanonicalQuery("flag"), "flag=");
  EXPECT_EQ(CanonicalQuery("p=a+b"), "p=a%2Bb");
  EXPECT_EQ(CanonicalQuery("a=1&X-Amz-Signature=abc", /*presigned=*/true), "a=1");
}

TEST(SigV4Dates, RoundTrip) {
  EXPECT_EQ(AmzDate(SuiteNow()), kSuiteDate);
  EXPECT_EQ(SuiteNow(), 1440938160);
  EXPECT_FALSE(ParseAmzDate("2015-08-30T12:36:00Z"));
  EXPECT_FALSE(ParseAmzDate("20151330T123600Z"));
  EXPECT_FALSE(ParseAmzDate(""));
}

const char* kGood = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

TEST(SigV4Verify, RefusalsNameTheReason) {
  Verifier verifier = SuiteVerifier();
  Request unsigned_req(verb::get, "/", 11);
  unsigned_req.set(beast_http::field::host, "example.amazonaws.com");
  auto r = verifier.Verify(unsigned_req, kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "MissingAuthenticationTokenException");
  EXPECT_EQ(r->message, "Missing Authentication Token");

  r = verifier.Verify(SuiteRequest(verb::get, "/", kGood, "AKIDOTHER"), kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "UnrecognizedClientException");
  EXPECT_EQ(r->message, "The security token included in the request is invalid.");

  std::string bad(kGood);
  bad[0] = '6';
  r = verifier.Verify(SuiteRequest(verb::get, "/", bad), kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "InvalidSignatureException");
  EXPECT_NE(r->message.find("does not match the signature you provided"), std::string::npos);

  // A different path, same signature.
  r = verifier.Verify(SuiteRequest(verb::get, "/other", kGood), kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "InvalidSignatureException");

  // A body the signature did not cover.
  Request tampered = SuiteRequest(verb::get, "/", kGood);
  tampered.body() = "x";
  r = verifier.Verify(tampered, kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "InvalidSignatureException");

  r = verifier.Verify(SuiteRequest(verb::get, "/", kGood), {"lambda"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message, "Credential should be scoped to correct service: 'lambda', not 'service'.");

  Request basic(verb::get, "/", 11);
  basic.set(beast_http::field::authorization, "Basic dXNlcjpwYXNz");
  r = verifier.Verify(basic, kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "IncompleteSignatureException");

  Request partial = SuiteRequest(verb::get, "/", kGood);
  partial.set(beast_http::field::authorization,
              "AWS4-HMAC-SHA256 Credential=" + std::string(kSuiteScope));
  r = verifier.Verify(partial, kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "IncompleteSignatureException");

  Request no_date = SuiteRequest(verb::get, "/", kGood);
  no_date.erase("X-Amz-Date");
  r = verifier.Verify(no_date, kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "IncompleteSignatureException");
}

TEST(SigV4Verify, ClockSkewOfFifteenMinutes) {
  // Signed 20 minutes ago / ahead: refused with AWS's wording; 14 minutes: fine.
  auto r = SuiteVerifier(20 * 60).Verify(SuiteRequest(verb::get, "/", kGood), kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "InvalidSignatureException");
  EXPECT_EQ(r->message,
            "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z "
            "(20150830T125600Z - 15 min.)");
  r = SuiteVerifier(-20 * 60).Verify(SuiteRequest(verb::get, "/", kGood), kSuiteService);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message,
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123100Z "
            "(20150830T121600Z + 15 min.)");
  EXPECT_FALSE(SuiteVerifier(14 * 60).Verify(SuiteRequest(verb::get, "/", kGood), kSuiteService));
  EXPECT_FALSE(SuiteVerifier(-14 * 60).Verify(SuiteRequest(verb::get, "/", kGood), kSuiteService));
}

// Signs with Sign() and applies the headers as a client would.
Request SignedRequest(const Credentials& creds, verb method, const std::string& target,
                      const std::string& body, bool unsigned_payload, int64_t now_s) {
  Request req(method, target, 11);
  req.set(beast_http::field::host, "127.0.0.1:7700");
  req.set(beast_http::field::content_type, "application/json");
  req.body() = body;
  SignInput in;
  in.method = req.method_string();
  in.target = target;
  in.host = "127.0.0.1:7700";
  std::string hash = unsigned_payload ? std::string(kUnsignedPayload) : Sha256Hex(body);
  in.payload_hash = hash;
  in.extra = {{"Content-Type", "application/json"}};
  in.now_s = now_s;
  for (const auto& [name, value] : Sign(creds, in)) req.set(name, value);
  return req;
}

TEST(SigV4Sign, SignerAndVerifierAgree) {
  Credentials creds{"AKGUST", "secret/with+chars"};
  Verifier verifier({creds}, [] { return int64_t{1'700'000'000}; });
  const std::vector<std::string> lambda = {kService};
  for (bool unsigned_payload : {false, true}) {
    Request req = SignedRequest(creds, verb::post,
                                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3A"
                                "function%3Af/invocations?Qualifier=%24LATEST&b=x%20y",
                                R"({"k":1})", unsigned_payload, 1'700'000'000);
    auto r = verifier.Verify(req, lambda);
    EXPECT_FALSE(r) << r->type << ": " << r->message;
    // The body is covered unless the client said UNSIGNED-PAYLOAD.
    req.body() = R"({"k":2})";
    EXPECT_EQ(verifier.Verify(req, lambda).has_value(), !unsigned_payload);
  }
  // A declared hash that is not the body's.
  Request req = SignedRequest(creds, verb::post, "/v1/jobs", "abc", false, 1'700'000'000);
  req.set("X-Amz-Content-Sha256", Sha256Hex("abd"));
  auto r = verifier.Verify(req, lambda);
  ASSERT_TRUE(r);
  EXPECT_NE(r->message.find("x-amz-content-sha256"), std::string::npos);
  // A wrong secret.
  Request wrong =
      SignedRequest({"AKGUST", "other"}, verb::get, "/v1/health", "", false, 1'700'000'000);
  r = verifier.Verify(wrong, lambda);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, "InvalidSignatureException");
}

// Runs /usr/bin/python3 with botocore (the client gust must accept) to sign
// requests; its JSON output lists {method, target, headers, body}.
std::optional<nlohmann::json> BotocoreSigned(const std::string& script) {
  std::string cmd = "/usr/bin/python3 -c '" + script + "' 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(cmd.c_str(), "r"), ::pclose);
  if (!pipe) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0) out.append(buf, n);
  auto doc = nlohmann::json::parse(out, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) return std::nullopt;
  return doc;
}

constexpr const char* kBotocoreScript = R"PY(
import json, urllib.parse
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
creds = Credentials("AKBOTO", "s3cr3t/+=")
cases = [
  ("GET", "http://127.0.0.1:7700/2015-03-31/functions/?MaxItems=5&Marker=a%2Fb%20c", b"", {}),
  ("POST", "http://127.0.0.1:7700/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af%3Alive/invocations", b"{\"x\": [1, 2]}", {"X-Amz-Invocation-Type": "RequestResponse", "X-Amz-Log-Type": "Tail", "X-Amz-Client-Context": "  spaced   value  "}),
  ("PUT", "http://localhost:7700/v1/functions/f%20g/code?publish=true&a=", b"\x00\xffzip", {"Content-Type": "application/zip"}),
  ("DELETE", "http://127.0.0.1:7700/2015-03-31/functions/f/aliases/live", b"", {}),
]
out = []
for method, url, body, headers in cases:
  req = AWSRequest(method=method, url=url, data=body, headers=headers)
  SigV4Auth(creds, "lambda", "eu-west-3").add_auth(req)
  p = urllib.parse.urlsplit(req.url)
  out.append({"method": method, "target": p.path + ("?" + p.query if p.query else ""),
              "host": p.netloc, "headers": dict(req.headers.items()), "body": body.hex()})
req = AWSRequest(method="GET", url="http://127.0.0.1:7700/2015-03-31/functions/?MaxItems=2")
SigV4QueryAuth(creds, "lambda", "us-west-2", expires=600).add_auth(req)
p = urllib.parse.urlsplit(req.url)
out.append({"method": "GET", "target": p.path + "?" + p.query, "host": p.netloc, "headers": {},
            "body": ""})
print(json.dumps(out))
)PY";

TEST(SigV4Botocore, BotocoreSignaturesVerify) {
  auto cases = BotocoreSigned(kBotocoreScript);
  if (!cases) GTEST_SKIP() << "/usr/bin/python3 with botocore is not available";
  ASSERT_EQ(cases->size(), 5u);
  // botocore signs with the wall clock: verify against it.
  Verifier verifier(std::vector<Credentials>{{"AKBOTO", "s3cr3t/+="}});
  Verifier wrong_secret(std::vector<Credentials>{{"AKBOTO", "s3cr3t/+-"}});
  for (const auto& c : *cases) {
    std::string method = c["method"];
    Request req(beast_http::string_to_verb(method), std::string(c["target"]), 11);
    req.set(beast_http::field::host, std::string(c["host"]));
    for (const auto& [name, value] : c["headers"].items()) req.set(name, std::string(value));
    std::string hex = c["body"];
    std::string body;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
      body += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    req.body() = body;
    auto r = verifier.Verify(req, {kService});
    EXPECT_FALSE(r) << method << " " << c["target"] << ": " << r->type << ": " << r->message;
    EXPECT_TRUE(wrong_secret.Verify(req, {kService})) << c["target"];
  }
}

}  // namespace
}  // namespace gust::http::sigv4

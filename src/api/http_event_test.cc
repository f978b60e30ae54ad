#include "api/http_event.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"

namespace gust::api {
namespace {

using Json = nlohmann::json;
namespace bh = http::beast_http;

http::Request MakeRequest(bh::verb method, const std::string& target,
                          const std::string& body = "") {
  http::Request req(method, target, 11);
  req.set(bh::field::host, "127.0.0.1:7700");
  req.body() = body;
  return req;
}

// Splits an encoded WSGI event into (environ, body).
std::pair<Json, std::string> DecodeWsgiEvent(const std::string& payload) {
  EXPECT_EQ(payload.substr(0, kWsgiEventMagic.size()), kWsgiEventMagic);
  size_t p = kWsgiEventMagic.size();
  uint32_t n = static_cast<unsigned char>(payload[p]) |
               static_cast<unsigned char>(payload[p + 1]) << 8 |
               static_cast<unsigned char>(payload[p + 2]) << 16 |
               static_cast<unsigned>(static_cast<unsigned char>(payload[p + 3])) << 24;
  Json environ = Json::parse(payload.substr(p + 4, n));
  return {environ, payload.substr(p + 4 + n)};
}

TEST(WsgiEncoding, EnvironCarriesEveryPart) {
  auto req = MakeRequest(bh::verb::post, "/web/shop-dev/a%20b/c?x=1&y=%C3%A9", "k=v");
  req.set(bh::field::content_type, "application/x-www-form-urlencoded");
  req.insert("X-Multi", "one");
  req.insert("X-Multi", "two");
  req.insert(bh::field::cookie, "a=1");
  req.insert(bh::field::cookie, "b=2");
  AppTarget target{"shop-dev", "/web/shop-dev", "/a%20b/c", "x=1&y=%C3%A9"};
  std::string payload = EncodeWsgiRequest(req, target, {"10.0.0.7", "", 0});
  auto [env, body] = DecodeWsgiEvent(payload);
  EXPECT_EQ(env["REQUEST_METHOD"], "POST");
  EXPECT_EQ(env["SCRIPT_NAME"], "/web/shop-dev");
  EXPECT_EQ(env["PATH_INFO"], "/a b/c");           // decoded
  EXPECT_EQ(env["QUERY_STRING"], "x=1&y=%C3%A9");  // raw
  EXPECT_EQ(env["CONTENT_TYPE"], "application/x-www-form-urlencoded");
  EXPECT_EQ(env["CONTENT_LENGTH"], "3");
  EXPECT_EQ(env["HTTP_X_MULTI"], "one, two");
  EXPECT_EQ(env["HTTP_COOKIE"], "a=1; b=2");
  EXPECT_EQ(env["SERVER_NAME"], "127.0.0.1");
  EXPECT_EQ(env["SERVER_PORT"], "7700");
  EXPECT_EQ(env["REMOTE_ADDR"], "10.0.0.7");
  EXPECT_FALSE(env.contains("HTTP_CONTENT_TYPE"));
  EXPECT_EQ(body, "k=v");
  EXPECT_TRUE(req.body().empty());  // moved into the event
}

TEST(WsgiEncoding, BytesSurviveAsLatin1AndBodyIsBinary) {
  std::string binary("\x00\xff\x80\r\n", 5);
  auto req = MakeRequest(bh::verb::put, "/web/a/%E2%82%AC", binary);
  req.set("X-Raw", "caf\xe9");  // a latin-1 byte in a header
  std::string payload = EncodeWsgiRequest(req, {"a", "/web/a", "/%E2%82%AC", ""}, {});
  auto [env, body] = DecodeWsgiEvent(payload);
  // WSGI strings are bytes as latin-1: each byte one code point.
  EXPECT_EQ(env["PATH_INFO"], "/\xc3\xa2\xc2\x82\xc2\xac");
  EXPECT_EQ(env["HTTP_X_RAW"], "caf\xc3\xa9");
  EXPECT_EQ(body, binary);
}

TEST(WsgiDecoding, StatusHeadersMultiValueAndBody) {
  std::string body("\x89PNG\r\n\r\n\x00", 9);
  auto r = DecodeWsgiResponse(
      "201 CREATED\r\nContent-Type: image/png\r\nSet-Cookie: a=1\r\n"
      "Set-Cookie: b=2\r\nContent-Length: 999\r\nConnection: close\r\n\r\n" +
      body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->result_int(), 201u);
  EXPECT_EQ(r->reason(), "CREATED");
  EXPECT_EQ((*r)[bh::field::content_type], "image/png");
  auto cookies = r->equal_range(bh::field::set_cookie);
  EXPECT_EQ(std::distance(cookies.first, cookies.second), 2);
  EXPECT_EQ(r->find(bh::field::content_length), r->end());  // the server frames it
  EXPECT_EQ(r->find(bh::field::connection), r->end());
  EXPECT_EQ(r->body(), body);
}

TEST(WsgiDecoding, MalformedAnswersNameTheProblem) {
  EXPECT_NE(DecodeWsgiResponse("200 OK\r\nX: y").status().message().find("no blank line"),
            std::string::npos);
  EXPECT_NE(DecodeWsgiResponse("OK\r\n\r\n").status().message().find("3-digit"), std::string::npos);
  EXPECT_NE(DecodeWsgiResponse("200 OK\r\nnocolon\r\n\r\n").status().message().find("no name"),
            std::string::npos);
  EXPECT_FALSE(DecodeWsgiResponse("099 X\r\n\r\n").ok());
  EXPECT_TRUE(DecodeWsgiResponse("204\r\n\r\n").ok());
}

TEST(EventV2, ShapeFollowsApiGateway) {
  auto req = MakeRequest(bh::verb::post, "/web/f/items/7?tag=a&tag=b&q=x%20y", "{\"a\":1}");
  req.set(bh::field::user_agent, "curl/8");
  req.insert(bh::field::cookie, "s=1; t=2");
  req.insert("X-Dup", "1");
  req.insert("X-Dup", "2");
  std::string event = EncodeEventV2(req, {"f", "/web/f", "/items/7", "tag=a&tag=b&q=x%20y"},
                                    {"127.0.0.1", "req-1", 1700000000123});
  Json e = Json::parse(event);
  EXPECT_EQ(e["version"], "2.0");
  EXPECT_EQ(e["routeKey"], "$default");
  EXPECT_EQ(e["rawPath"], "/items/7");
  EXPECT_EQ(e["rawQueryString"], "tag=a&tag=b&q=x%20y");
  EXPECT_EQ(e["queryStringParameters"]["tag"], "a,b");
  EXPECT_EQ(e["queryStringParameters"]["q"], "x y");
  EXPECT_EQ(e["cookies"], Json({"s=1", "t=2"}));
  EXPECT_FALSE(e["headers"].contains("cookie"));
  EXPECT_EQ(e["headers"]["x-dup"], "1,2");
  EXPECT_EQ(e["requestContext"]["http"]["method"], "POST");
  EXPECT_EQ(e["requestContext"]["http"]["sourceIp"], "127.0.0.1");
  EXPECT_EQ(e["requestContext"]["http"]["userAgent"], "curl/8");
  EXPECT_EQ(e["requestContext"]["requestId"], "req-1");
  EXPECT_EQ(e["requestContext"]["timeEpoch"], 1700000000123);
  EXPECT_EQ(e["requestContext"]["time"], "14/Nov/2023:22:13:20 +0000");
  EXPECT_EQ(e["body"], "{\"a\":1}");
  EXPECT_EQ(e["isBase64Encoded"], false);
}

TEST(EventV2, BinaryBodyIsBase64) {
  std::string binary("\xff\xfe\x00", 3);
  auto req = MakeRequest(bh::verb::post, "/", binary);
  Json e = Json::parse(EncodeEventV2(req, {"f", "", "/", ""}, {}));
  EXPECT_EQ(e["isBase64Encoded"], true);
  EXPECT_EQ(*Base64Decode(e["body"].get<std::string>()), binary);
  EXPECT_EQ(e["rawPath"], "/");
}

TEST(EventV2Response, ProxyShape) {
  Json out = {{"statusCode", 404},
              {"headers", {{"Content-Type", "text/plain"}, {"X-N", 3}}},
              {"multiValueHeaders", {{"X-M", {"a", "b"}}}},
              {"cookies", {"c=1", "d=2"}},
              {"body", Base64Encode(std::string("\x00\x01", 2))},
              {"isBase64Encoded", true}};
  auto r = DecodeEventV2Response(out.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->result_int(), 404u);
  EXPECT_EQ((*r)[bh::field::content_type], "text/plain");
  EXPECT_EQ((*r)["X-N"], "3");
  auto m = r->equal_range("X-M");
  EXPECT_EQ(std::distance(m.first, m.second), 2);
  auto c = r->equal_range(bh::field::set_cookie);
  EXPECT_EQ(std::distance(c.first, c.second), 2);
  EXPECT_EQ(r->body(), std::string("\x00\x01", 2));
}

TEST(EventV2Response, BareValuesAre200Json) {
  auto s = DecodeEventV2Response("\"hello\"");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->result_int(), 200u);
  EXPECT_EQ(s->body(), "hello");
  EXPECT_EQ((*s)[bh::field::content_type], "application/json");
  auto o = DecodeEventV2Response("{\"a\": 1}");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->body(), "{\"a\": 1}");
  auto n = DecodeEventV2Response("null");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->body(), "null");
}

TEST(EventV2Response, BadAnswersAreErrors) {
  EXPECT_FALSE(DecodeEventV2Response("{\"statusCode\": 42}").ok());
  EXPECT_FALSE(DecodeEventV2Response("{\"statusCode\": 200, \"body\": \"%%\", "
                                     "\"isBase64Encoded\": true}")
                   .ok());
  EXPECT_FALSE(DecodeEventV2Response("not json").ok());
  EXPECT_FALSE(
      DecodeEventV2Response("{\"statusCode\": 200, \"headers\": {\"X\": \"a\\r\\nB: c\"}}").ok());
}

// Issue 11: these once threw nlohmann's type_error on the engine thread and
// ended the engine. A function's answer is outside input: a 502 names it.
TEST(EventV2Response, WrongTypesAreErrorsNotExceptions) {
  auto r = DecodeEventV2Response(R"({"statusCode":200,"isBase64Encoded":"false","body":"x"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("isBase64Encoded must be a boolean, not \"false\""),
            std::string::npos)
      << r.status().message();
  EXPECT_FALSE(DecodeEventV2Response(R"({"statusCode":18446744073709551615})").ok());
  EXPECT_FALSE(DecodeEventV2Response(R"({"statusCode":[200]})").ok());
  auto odd = DecodeEventV2Response(
      R"({"statusCode":"201","headers":{"X-N":5,"X-O":{"a":1}},"cookies":[1,"c=d"],"body":{"k":[1]}})");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->result_int(), 201);
  EXPECT_EQ(odd->at("X-N"), "5");
  EXPECT_EQ(odd->body(), R"({"k":[1]})");
}

}  // namespace
}  // namespace gust::api

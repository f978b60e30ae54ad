#include "http/router.h"

#include <gtest/gtest.h>

#include <optional>

namespace gust::http {
namespace {

using beast_http::verb;

Request MakeRequest(verb method, const std::string& target) { return Request(method, target, 11); }

// Routes one request and returns what was sent to the responder.
std::optional<Response> RouteOnce(const Router& router, verb method, const std::string& target) {
  std::optional<Response> sent;
  router.Route(MakeRequest(method, target),
               Responder([&sent](Response&& r) { sent = std::move(r); }));
  return sent;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto record = [this](const std::string& name) {
      return [this, name](Request&& req, const RouteMatch& m, Responder r) {
        hit_ = name;
        match_ = m;
        target_ = std::string(req.target());
        r.Send(MakeResponse(beast_http::status::ok, name));
      };
    };
    router_.Add(verb::get, "/2015-03-31/functions/", record("list"));
    router_.Add(verb::post, "/2015-03-31/functions", record("create"));
    router_.Add(verb::get, "/2015-03-31/functions/{name}", record("get"));
    router_.Add(verb::delete_, "/2015-03-31/functions/{name}", record("delete"));
    router_.Add(verb::post, "/2015-03-31/functions/{name}/invocations", record("invoke"));
    router_.Add(verb::get, "/files/{path+}", record("files"));
    router_.Add(verb::get, "/", record("root"));
  }

  Router router_;
  std::string hit_;
  RouteMatch match_;
  std::string target_;
};

TEST_F(RouterTest, MatchesLiteralAndParamSegments) {
  auto res = RouteOnce(router_, verb::post, "/2015-03-31/functions/my-fn/invocations");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result(), beast_http::status::ok);
  EXPECT_EQ(hit_, "invoke");
  EXPECT_EQ(match_.params.at("name"), "my-fn");
  EXPECT_EQ(target_, "/2015-03-31/functions/my-fn/invocations");  // request moved intact
}

TEST_F(RouterTest, TrailingSlashIsIgnored) {
  RouteOnce(router_, verb::get, "/2015-03-31/functions");
  EXPECT_EQ(hit_, "list");
  RouteOnce(router_, verb::post, "/2015-03-31/functions/");
  EXPECT_EQ(hit_, "create");
  RouteOnce(router_, verb::get, "/");
  EXPECT_EQ(hit_, "root");
}

// The APIs register each route once, without a trailing slash, and rely on
// this for every method (boto3 and the aws CLI send "/functions/" for some).
TEST(RouterTrailingSlash, IgnoredForEveryMethodOnBothSides) {
  for (verb method : {verb::get, verb::head, verb::post, verb::put, verb::delete_, verb::patch}) {
    SCOPED_TRACE(std::string(beast_http::to_string(method)));
    Router router;
    std::string hit;
    auto record = [&hit](const std::string& name) {
      return [&hit, name](Request&&, const RouteMatch&, Responder r) {
        hit = name;
        r.Send(MakeResponse(beast_http::status::ok, name));
      };
    };
    router.Add(method, "/v1/things", record("things"));
    router.Add(method, "/v1/things/{id}/", record("thing"));
    for (const char* target : {"/v1/things", "/v1/things/", "/v1/things/?a=1"}) {
      hit.clear();
      auto res = RouteOnce(router, method, target);
      ASSERT_TRUE(res) << target;
      EXPECT_EQ(res->result(), beast_http::status::ok) << target;
      EXPECT_EQ(hit, "things") << target;
    }
    for (const char* target : {"/v1/things/x", "/v1/things/x/"}) {
      hit.clear();
      auto res = RouteOnce(router, method, target);
      ASSERT_TRUE(res) << target;
      EXPECT_EQ(hit, "thing") << target;
    }
    // Only one slash is forgiven, and only at the end.
    hit.clear();
    auto res = RouteOnce(router, method, "/v1/things//");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result(), beast_http::status::not_found);
    EXPECT_EQ(hit, "");
  }
}

// So that a route kept "for the trailing slash" cannot come back: the
// engine refuses to start with a route that could never be reached.
TEST(RouterDeathTest, ARouteOfTheSameShapeTwiceIsABug) {
  auto noop = [](Request&&, const RouteMatch&, Responder) {};
  Router router;
  router.Add(verb::post, "/2015-03-31/functions", noop);
  router.Add(verb::get, "/2015-03-31/functions", noop);  // another method: fine
  router.Add(verb::get, "/v1/jobs/{id}", noop);
  router.Add(verb::get, "/v1/jobs/all", noop);  // a literal beside a parameter: fine
  EXPECT_DEATH(router.Add(verb::post, "/2015-03-31/functions/", noop),
               "route registered twice: POST /2015-03-31/functions/");
  EXPECT_DEATH(router.Add(verb::get, "/v1/jobs/{job}/", noop), "route registered twice");
}

TEST_F(RouterTest, MethodSelectsAmongSamePattern) {
  RouteOnce(router_, verb::get, "/2015-03-31/functions/f");
  EXPECT_EQ(hit_, "get");
  RouteOnce(router_, verb::delete_, "/2015-03-31/functions/f");
  EXPECT_EQ(hit_, "delete");
}

TEST_F(RouterTest, ParamsArePercentDecodedButPlusIsKept) {
  RouteOnce(router_, verb::get, "/2015-03-31/functions/arn%3Aaws%3Alambda%3Afn+x");
  EXPECT_EQ(hit_, "get");
  EXPECT_EQ(match_.params.at("name"), "arn:aws:lambda:fn+x");
}

TEST_F(RouterTest, EncodedSlashStaysInsideOneSegment) {
  RouteOnce(router_, verb::get, "/2015-03-31/functions/a%2Fb");
  EXPECT_EQ(hit_, "get");
  EXPECT_EQ(match_.params.at("name"), "a/b");
}

TEST_F(RouterTest, RestParamTakesTheRemainder) {
  RouteOnce(router_, verb::get, "/files/a/b%20c/d.txt");
  EXPECT_EQ(hit_, "files");
  EXPECT_EQ(match_.params.at("path"), "a/b c/d.txt");
  hit_.clear();
  auto res = RouteOnce(router_, verb::get, "/files");  // rest needs one segment at least
  EXPECT_EQ(hit_, "");
  EXPECT_EQ(res->result(), beast_http::status::not_found);
}

TEST_F(RouterTest, EmptySegmentDoesNotMatchParam) {
  auto res = RouteOnce(router_, verb::post, "/2015-03-31/functions//invocations");
  EXPECT_EQ(hit_, "");
  EXPECT_EQ(res->result(), beast_http::status::not_found);
}

TEST_F(RouterTest, QueryIsParsed) {
  RouteOnce(router_, verb::get,
            "/2015-03-31/functions/?MaxItems=10&Marker=a%2Bb+c&x=1&x=2&flag&=v&&");
  EXPECT_EQ(hit_, "list");
  EXPECT_EQ(match_.query.at("MaxItems"), "10");
  EXPECT_EQ(match_.query.at("Marker"), "a+b c");
  EXPECT_EQ(match_.query.at("x"), "2");  // last wins
  EXPECT_EQ(match_.query_all.count("x"), 2u);
  EXPECT_EQ(match_.query.at("flag"), "");
  EXPECT_EQ(match_.query.at(""), "v");
}

TEST_F(RouterTest, DefaultNotFoundIsJson) {
  auto res = RouteOnce(router_, verb::get, "/nope/\"x\"");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result(), beast_http::status::not_found);
  EXPECT_EQ(res->body(), R"({"Type":"User","message":"no route for GET /nope/\"x\""})");
  EXPECT_EQ((*res)[beast_http::field::content_type], "application/json");
  EXPECT_EQ((*res)[beast_http::field::content_length], std::to_string(res->body().size()));
  EXPECT_EQ((*res)[beast_http::field::server], "gust");
}

TEST_F(RouterTest, DefaultMethodNotAllowedListsAllowedMethods) {
  auto res = RouteOnce(router_, verb::put, "/2015-03-31/functions/f");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result(), beast_http::status::method_not_allowed);
  EXPECT_EQ((*res)[beast_http::field::allow], "GET, DELETE");
  EXPECT_NE(res->body().find("method PUT is not allowed"), std::string::npos);
}

TEST_F(RouterTest, CustomFallbacks) {
  router_.SetNotFound([](Request&&, const RouteMatch&, Responder r) {
    r.Send(MakeResponse(beast_http::status::not_found, "custom 404"));
  });
  router_.SetMethodNotAllowed([](Request&&, const RouteMatch&, Responder r) {
    r.Send(MakeResponse(beast_http::status::method_not_allowed, "custom 405"));
  });
  EXPECT_EQ(RouteOnce(router_, verb::get, "/x")->body(), "custom 404");
  EXPECT_EQ(RouteOnce(router_, verb::patch, "/")->body(), "custom 405");
}

TEST_F(RouterTest, FirstAddedRouteWins) {
  Router router;
  std::string hit;
  router.Add(verb::get, "/a/{x}", [&](Request&&, const RouteMatch&, Responder) { hit = "param"; });
  router.Add(verb::get, "/a/b", [&](Request&&, const RouteMatch&, Responder) { hit = "literal"; });
  RouteOnce(router, verb::get, "/a/b");
  EXPECT_EQ(hit, "param");
}

TEST(ResponderTest, UnansweredResponderSends500Once) {
  int calls = 0;
  std::optional<Response> sent;
  {
    Responder r([&](Response&& res) {
      ++calls;
      sent = std::move(res);
    });
    // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): the copy is the test
    Responder copy = r;  // the 500 waits for the last copy
  }
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->result(), beast_http::status::internal_server_error);
}

TEST(ResponderTest, FirstSendWins) {
  std::vector<std::string> bodies;
  {
    Responder r([&](Response&& res) { bodies.push_back(res.body()); });
    r.Send(MakeResponse(beast_http::status::ok, "first"));
    // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): the copy is the test
    Responder copy = r;
    copy.Send(MakeResponse(beast_http::status::ok, "second"));
  }
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0], "first");
}

TEST(PercentTest, DecodeEncode) {
  EXPECT_EQ(PercentDecode("a%20b%3a%3A"), "a b::");
  EXPECT_EQ(PercentDecode("100%"), "100%");    // truncated escape kept
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");  // invalid escapes kept
  EXPECT_EQ(PercentDecode("a+b"), "a+b");      // '+' is literal outside queries
  EXPECT_EQ(PercentEncode("a b/c:d~e-f_g.h"), "a%20b%2Fc%3Ad~e-f_g.h");
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(PercentDecode(PercentEncode(all)), all);
}

TEST(ParseQueryTest, PlusIsSpaceInKeysAndValues) {
  auto q = ParseQuery("a+b=c+d%2B");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.begin()->first, "a b");
  EXPECT_EQ(q.begin()->second, "c d+");
  EXPECT_TRUE(ParseQuery("").empty());
}

}  // namespace
}  // namespace gust::http

// The web Gateway (api/gateway.h) on the Invoker and the fake launcher: its
// per-app queue and scale-out, and how invocation outcomes map to HTTP
// (502 crash / error, 504 timeout, 429 at the function's concurrency).
#include "api/gateway.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <optional>

#include "engine/testing/engine_harness.h"

namespace gust::api {
namespace {

using namespace std::chrono_literals;
using engine::testing::EngineHarness;
using engine::testing::InvokeSeen;
using engine::testing::Reply;
using Json = nlohmann::json;

// An API Gateway v2.0 response, as a function behind the gateway answers.
Reply Ok(const std::string& body) {
  return Reply::Result(Json{{"statusCode", 200}, {"body", body}}.dump());
}

class GatewayTest : public ::testing::Test {
 protected:
  void MakeGateway(const GatewayOptions& options) {
    gateway_ = std::make_unique<Gateway>(h_.io, *h_.invoker, *h_.logs, options);
  }
  // Sends GET /web/app<path>; the answer lands in the returned slot.
  std::shared_ptr<std::optional<http::Response>> Get(const std::string& path) {
    http::Request req(http::beast_http::verb::get, "/web/app" + path, 11);
    req.set(http::beast_http::field::host, "127.0.0.1");
    EXPECT_TRUE(gateway_->Accepts(req));
    auto slot = std::make_shared<std::optional<http::Response>>();
    gateway_->Handle(std::move(req),
                     http::Responder([slot](http::Response&& r) { *slot = std::move(r); }));
    return slot;
  }
  http::Response GetAndWait(const std::string& path) {
    auto slot = Get(path);
    EXPECT_TRUE(h_.RunUntil([&] { return slot->has_value(); })) << "no answer to " << path;
    return slot->has_value() ? std::move(**slot) : http::Response{};
  }
  static std::string ErrorType(const http::Response& r) {
    auto doc = Json::parse(r.body(), nullptr, false);
    return doc.is_object() && doc.contains("errorType") ? doc["errorType"].get<std::string>() : "";
  }

  EngineHarness h_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(GatewayTest, AnswersAndLogsTheRequest) {
  h_.CreateFunction("app");
  h_.launcher.SetHandler("app", [](const InvokeSeen& seen) {
    auto event = Json::parse(seen.payload, nullptr, false);
    return Ok("path=" + event.value("rawPath", std::string("?")));
  });
  MakeGateway({});
  http::Response r = GetAndWait("/hello");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "path=/hello");
  EXPECT_FALSE(std::string(r["X-Gust-Request-Id"]).empty());
  EXPECT_NE(h_.Log("app").find("[HTTP] "), std::string::npos);
  EXPECT_EQ(GetAndWait("/x").result_int(), 200);
  EXPECT_EQ(h_.launcher.spawns(), 1);
}

TEST_F(GatewayTest, UnknownAppIs404) {
  MakeGateway({});
  http::Response r = GetAndWait("/");
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_NE(r.body().find("no app named 'app'"), std::string::npos) << r.body();
}

TEST_F(GatewayTest, TimeoutIs504) {
  h_.CreateFunction("app", [](FunctionConfig& c) { c.timeout_s = 1; });
  h_.launcher.SetHandler("app", [](const InvokeSeen&) { return Reply::Hold(); });
  MakeGateway({});
  auto slot = Get("/slow");
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.Holding().size() == 1; }));
  h_.Advance(999ms);
  EXPECT_FALSE(slot->has_value());
  h_.Advance(1ms);
  ASSERT_TRUE(h_.RunUntil([&] { return slot->has_value(); }));
  EXPECT_EQ((*slot)->result_int(), 504);
  EXPECT_EQ(ErrorType(**slot), "Sandbox.Timedout");
  EXPECT_EQ(h_.launcher.kills(), 1);
}

TEST_F(GatewayTest, CrashAndHandlerErrorAre502AndTheAppRecovers) {
  h_.CreateFunction("app");
  int calls = 0;
  h_.launcher.SetHandler("app", [&](const InvokeSeen&) {
    ++calls;
    if (calls == 1) return Reply::Crash(SIGABRT);
    if (calls == 2) return Reply::Error("KeyError", "'user'");
    return Ok("fine");
  });
  MakeGateway({});
  http::Response crashed = GetAndWait("/");
  EXPECT_EQ(crashed.result_int(), 502);
  EXPECT_EQ(ErrorType(crashed), "Runtime.ExitError");
  EXPECT_NE(crashed.body().find("signal: aborted"), std::string::npos) << crashed.body();
  http::Response raised = GetAndWait("/");
  EXPECT_EQ(raised.result_int(), 502);
  EXPECT_EQ(ErrorType(raised), "KeyError");
  http::Response fine = GetAndWait("/");
  EXPECT_EQ(fine.result_int(), 200);
  EXPECT_EQ(h_.launcher.spawns(), 2) << "a fresh sandbox after the crash, kept after the error";
}

TEST_F(GatewayTest, QueuesBeyondTheLimitAndScalesOutWhenStuck) {
  h_.CreateFunction("app");
  h_.launcher.SetHandler("app", [](const InvokeSeen&) { return Reply::Hold(); });
  GatewayOptions options;
  options.base_in_flight = 1;
  options.scale_out_after_ms = 50;
  MakeGateway(options);
  auto a = Get("/a");
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.Holding().size() == 1; }));
  auto b = Get("/b");
  h_.Settle();
  EXPECT_EQ(h_.launcher.spawns(), 1) << "b waits in the gateway's queue";
  EXPECT_EQ(h_.launcher.invocations().size(), 1u);

  // A finishing request hands its slot (and its warm sandbox) to the queue.
  ASSERT_TRUE(h_.launcher.Answer(h_.launcher.Holding()[0], Ok("a")));
  ASSERT_TRUE(h_.RunUntil([&] { return a->has_value(); }));
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.invocations().size() == 2; }));
  EXPECT_EQ(h_.launcher.spawns(), 1);

  // b is stuck: after scale_out_after_ms with nothing finishing, c gets a new sandbox.
  auto c = Get("/c");
  h_.Advance(49ms);
  EXPECT_EQ(h_.launcher.spawns(), 1);
  h_.Advance(1ms);
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.Holding().size() == 2; }));
  EXPECT_EQ(h_.launcher.spawns(), 2);
  for (const std::string& id : h_.launcher.Holding()) h_.launcher.Answer(id, Ok("done"));
  ASSERT_TRUE(h_.RunUntil([&] { return b->has_value() && c->has_value(); }));
  EXPECT_EQ((*b)->result_int(), 200);
  EXPECT_EQ((*c)->result_int(), 200);
}

// The gateway's requests wait in the Invoker's one queue, so the wait for a
// slot under the adaptive limit is bounded by max_queue_ms too.
TEST_F(GatewayTest, WaitUnderTheAdaptiveLimitIs429AfterTheQueueWait) {
  h_.CreateFunction("app");
  h_.launcher.SetHandler("app", [](const InvokeSeen&) { return Reply::Hold(); });
  MakeGateway({.max_queue_ms = 1000, .base_in_flight = 1, .scale_out_after_ms = 100000});
  auto first = Get("/a");
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.Holding().size() == 1; }));
  auto waiting = Get("/b");
  h_.Advance(2100ms);  // past max_queue_ms, long before a scale-out
  ASSERT_TRUE(h_.RunUntil([&] { return waiting->has_value(); }));
  EXPECT_EQ((*waiting)->result_int(), 429);
  EXPECT_EQ(h_.launcher.invocations().size(), 1u) << "the waiting request never ran";
  h_.launcher.Answer(h_.launcher.Holding()[0], Ok("a"));
  EXPECT_TRUE(h_.RunUntil([&] { return first->has_value(); }));
}

TEST_F(GatewayTest, FunctionAtItsConcurrencyIs429AfterTheQueueWait) {
  h_.CreateFunction("app");
  h_.SetReservedConcurrency("app", 1);
  h_.launcher.SetHandler("app", [](const InvokeSeen&) { return Reply::Hold(); });
  GatewayOptions options;
  options.base_in_flight = 2;  // past the gateway: the Invoker's queue decides
  options.max_queue_ms = 1000;
  MakeGateway(options);
  auto a = Get("/a");
  ASSERT_TRUE(h_.RunUntil([&] { return h_.launcher.Holding().size() == 1; }));
  auto b = Get("/b");
  h_.Advance(900ms);
  EXPECT_FALSE(b->has_value());
  h_.Advance(1100ms);
  ASSERT_TRUE(h_.RunUntil([&] { return b->has_value(); }));
  EXPECT_EQ((*b)->result_int(), 429);
  EXPECT_EQ(ErrorType(**b), "TooManyRequestsException");
  EXPECT_EQ(std::string((**b)[http::beast_http::field::retry_after]), "1");
  EXPECT_FALSE(a->has_value());
  // Finished, not abandoned: a held invocation pins its session until it ends.
  ASSERT_TRUE(h_.launcher.Answer(h_.launcher.Holding()[0], Ok("a")));
  ASSERT_TRUE(h_.RunUntil([&] { return a->has_value(); }));
}

}  // namespace
}  // namespace gust::api

#include "api/lambda_shapes.h"

#include <gtest/gtest.h>

#include "api/body_parsers.h"
#include "api/request_fields.h"

namespace gust::api {
namespace {

TEST(ParseFunctionRefTest, AcceptsNamesAndArns) {
  auto plain = ParseFunctionRef("my-fn_1");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->name, "my-fn_1");
  EXPECT_EQ(plain->qualifier, "");
  auto qualified = ParseFunctionRef("f:prod");
  EXPECT_EQ(qualified->qualifier, "prod");
  auto arn = ParseFunctionRef("arn:aws:lambda:us-east-1:000000000000:function:f:3");
  ASSERT_TRUE(arn.ok());
  EXPECT_EQ(arn->name, "f");
  EXPECT_EQ(arn->qualifier, "3");
  auto partial = ParseFunctionRef("000000000000:function:f");
  EXPECT_EQ(partial->name, "f");
  EXPECT_EQ(ParseFunctionRef("f:$LATEST")->qualifier, "$LATEST");
}

TEST(ParseFunctionRefTest, RejectsBadNamesWithValidationMessage) {
  for (const char* bad : {"", "has space", "a/b", "x:y:z", "arn:aws:s3:::bucket", "f:bad!q"}) {
    auto r = ParseFunctionRef(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message().rfind("1 validation error detected: Value '", 0), 0u) << bad;
  }
  EXPECT_FALSE(ParseFunctionRef(std::string(65, 'a')).ok());
}

TEST(ValidationTest, MemoryTimeoutStorage) {
  EXPECT_EQ(CheckMemory(128, 16000).status, 0);
  EXPECT_EQ(CheckMemory(16000, 16000).status, 0);
  auto low = CheckMemory(64, 16000);
  EXPECT_EQ(low.status, 400);
  EXPECT_EQ(low.type, "ValidationException");
  EXPECT_NE(low.message.find("greater than or equal to 128"), std::string::npos);
  EXPECT_EQ(CheckTimeout(0, 604800).status, 400);
  EXPECT_EQ(CheckTimeout(900, 604800).status, 0);
  EXPECT_EQ(CheckTimeout(3600, 604800).status, 0);
  EXPECT_EQ(CheckTimeout(604800, 604800).status, 0);
  EXPECT_EQ(CheckEphemeralStorage(511).status, 400);
}

// Lambda's 10240 MB and 900 s are not gust's: above the operator's ceiling,
// the error names it and the option that sets it.
TEST(ValidationTest, AboveTheEnginesCeilingNamesIt) {
  auto memory = CheckMemory(20480, 16000);
  EXPECT_EQ(memory.status, 400);
  EXPECT_EQ(memory.type, "ValidationException");
  EXPECT_NE(memory.message.find("MemorySize 20480 is above this engine's --max-memory of 16000 MB "
                                "(set by gust up --max-memory)"),
            std::string::npos)
      << memory.message;
  auto timeout = CheckTimeout(604801, 604800);
  EXPECT_EQ(timeout.type, "ValidationException");
  EXPECT_NE(timeout.message.find("Timeout 604801 is above this engine's --max-timeout of 604800 "
                                 "seconds (set by gust up --max-timeout)"),
            std::string::npos)
      << timeout.message;
}

EngineConfig Ceilings(int max_timeout_s, int max_memory_mb) {
  EngineConfig c;
  c.max_timeout_s = max_timeout_s;
  c.max_memory_mb = max_memory_mb;
  return c;
}

TEST(ValidationTest, ConfigFieldsUpToTheCeilings) {
  FunctionConfig c;
  c.handler = "app.handler";
  nlohmann::json body = {{"MemorySize", 20480}, {"Timeout", 7 * 86400}};
  RequestFields ok(body);
  EXPECT_EQ(ApplyConfigFields(ok, Ceilings(7 * 86400, 20480), c).status, 0);
  EXPECT_EQ(c.memory_mb, 20480);
  EXPECT_EQ(c.timeout_s, 7 * 86400);
  RequestFields over(body);
  ApiError e = ApplyConfigFields(over, Ceilings(3600, 20480), c);
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("--max-timeout of 3600 seconds"), std::string::npos) << e.message;
}

TEST(ValidationTest, JobHeaderMemoryAndTimeoutUpToTheCeilings) {
  const std::string code(64, 'a');
  auto header = [&code](nlohmann::json fields) {
    fields["code"] = code;
    fields["python"] = RuntimePythonVersion();
    return fields;
  };
  EngineConfig engine = Ceilings(7 * 86400, 16000);
  JobHeader h;
  ASSERT_EQ(ParseJobHeader(header({{"memory", 12288}, {"timeout", 0}}), engine, &h).status, 0);
  EXPECT_EQ(h.memory, 12288);
  EXPECT_EQ(h.timeout, 0);  // none of the task's own
  ASSERT_EQ(ParseJobHeader(header({{"timeout", 86400}}), engine, &h).status, 0);
  EXPECT_EQ(h.timeout, 86400);
  ApiError memory = ParseJobHeader(header({{"memory", 20480}}), engine, &h);
  EXPECT_EQ(memory.status, 400);
  EXPECT_EQ(memory.message,
            "job header field memory 20480 is above this engine's --max-memory of 16000 MB (set "
            "by gust up --max-memory)");
  ApiError timeout = ParseJobHeader(header({{"timeout", 7 * 86400 + 1}}), engine, &h);
  EXPECT_NE(timeout.message.find("--max-timeout of 604800 seconds"), std::string::npos);
  // Below the least, or not an integer: the range, as before.
  EXPECT_NE(ParseJobHeader(header({{"memory", 64}}), engine, &h)
                .message.find("must be an integer from 128 to 16000, not 64"),
            std::string::npos);
  EXPECT_NE(ParseJobHeader(header({{"timeout", -1}}), engine, &h).message.find("from 0 to 604800"),
            std::string::npos);
}

TEST(ValidationTest, Environment) {
  EXPECT_EQ(CheckEnvironment({{"GOOD_KEY", "v"}}).status, 0);
  auto bad = CheckEnvironment({{"1BAD", "v"}});
  EXPECT_EQ(bad.type, "ValidationException");
  EXPECT_NE(bad.message.find("'1BAD'"), std::string::npos);
  EXPECT_EQ(CheckEnvironment({{"BAD-DASH", "v"}}).status, 400);
  auto reserved = CheckEnvironment({{"AWS_REGION", "x"}});
  EXPECT_EQ(reserved.type, "InvalidParameterValueException");
  EXPECT_NE(reserved.message.find("Reserved keys used in this request: AWS_REGION"),
            std::string::npos);
  auto big = CheckEnvironment({{"BIG", std::string(5000, 'x')}});
  EXPECT_EQ(big.status, 400);
  EXPECT_NE(big.message.find("exceeded the 4KB limit"), std::string::npos);
}

TEST(ShapesTest, ErrorsAreLambdaShaped) {
  auto r = ErrorResponse(FromStatus(Status::NotFound("Function not found: x")));
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_EQ(r["x-amzn-ErrorType"], "ResourceNotFoundException");
  EXPECT_EQ(r.body(), R"({"Message":"Function not found: x","Type":"User"})");
  EXPECT_EQ(FromStatus(Status::TooManyRequests("x")).status, 429);
  EXPECT_EQ(FromStatus(Status::Conflict("x")).type, "ResourceConflictException");
}

TEST(ShapesTest, CodeSha256IsBase64OfRawDigest) {
  // sha256("") in hex and base64.
  EXPECT_EQ(CodeSha256Base64("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

}  // namespace
}  // namespace gust::api

#include "api/lambda_shapes.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(CheckMemory(128).status, 0);
  EXPECT_EQ(CheckMemory(10240).status, 0);
  auto low = CheckMemory(64);
  EXPECT_EQ(low.status, 400);
  EXPECT_EQ(low.type, "ValidationException");
  EXPECT_NE(low.message.find("greater than or equal to 128"), std::string::npos);
  EXPECT_NE(CheckMemory(10241).message.find("less than or equal to 10240"), std::string::npos);
  EXPECT_EQ(CheckTimeout(0).status, 400);
  EXPECT_EQ(CheckTimeout(901).status, 400);
  EXPECT_EQ(CheckTimeout(900).status, 0);
  EXPECT_EQ(CheckEphemeralStorage(511).status, 400);
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

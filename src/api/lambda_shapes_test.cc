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
    fields["python"] = {{"executable", "/usr/bin/python3"},
                        {"prefix", "/usr"},
                        {"base_prefix", "/usr"},
                        {"version", "3.11.2"}};
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

TEST(ValidationTest, JobHeaderNamesTheClientsPythonEnvironment) {
  EngineConfig engine = Ceilings(3600, 16000);
  nlohmann::json env = {{"executable", "/home/u/venv/bin/python"},
                        {"prefix", "/home/u/venv"},
                        {"base_prefix", "/root/.pyenv/versions/3.9.18"},
                        {"version", "3.9.18"}};
  auto parse = [&engine](const nlohmann::json& python, JobHeader* h) {
    return ParseJobHeader({{"code", std::string(64, 'a')}, {"python", python}}, engine, h);
  };
  auto with = [&env](const char* key, const nlohmann::json& value) {
    nlohmann::json changed = env;
    changed[key] = value;
    return changed;
  };
  JobHeader h;
  ASSERT_EQ(parse(env, &h).status, 0) << parse(env, &h).message;
  EXPECT_EQ(h.python.executable, "/home/u/venv/bin/python");
  EXPECT_EQ(h.python.prefix, "/home/u/venv");
  EXPECT_EQ(h.python.base_prefix, "/root/.pyenv/versions/3.9.18");
  EXPECT_EQ(h.python.version, "3.9.18");
  // Another version than the engine's own is no refusal: the map runs in it.
  EXPECT_EQ(parse(with("version", "3.13.0"), &h).status, 0);
  // A client from before environments sent "major.minor": told what is wanted.
  ApiError old = parse("3.11", &h);
  EXPECT_EQ(old.type, "InvalidParameterValueException");
  EXPECT_NE(old.message.find("job header field python must name the client's Python "
                             "environment"),
            std::string::npos)
      << old.message;
  EXPECT_NE(old.message.find("older than this engine"), std::string::npos) << old.message;
  // Each member named when missing or bad.
  nlohmann::json no_prefix = env;
  no_prefix.erase("prefix");
  EXPECT_EQ(parse(no_prefix, &h).message,
            "job header field python.prefix (an absolute path) is required");
  ApiError relative = parse(with("executable", "venv/bin/python"), &h);
  EXPECT_EQ(relative.status, 400);
  EXPECT_NE(relative.message.find("job header field python.executable must be the absolute path"),
            std::string::npos)
      << relative.message;
  EXPECT_EQ(parse(with("executable", std::string("/a\nb")), &h).status, 400);
  EXPECT_EQ(parse(with("executable", "/" + std::string(4096, 'a')), &h).status, 400);
  EXPECT_NE(parse(with("version", "three"), &h)
                .message.find("python.version must be \"major.minor[.micro]\", not \"three\""),
            std::string::npos);
  ApiError too_old = parse(with("version", "3.8.18"), &h);
  EXPECT_EQ(too_old.type, "PythonVersionMismatchException");
  EXPECT_EQ(too_old.message,
            "client Python 3.8 (/home/u/venv/bin/python) is not supported: maps run in CPython "
            "3.9 or later");
}

TEST(ValidationTest, PythonOfAFunctionRoundTripsAsGustPython) {
  FunctionConfig c;
  c.name = "f";
  c.handler = "app.handler";
  nlohmann::json body = {{"GustPython", "/home/u/venv/bin/python"}};
  RequestFields fields(body);
  ASSERT_EQ(ApplyConfigFields(fields, Ceilings(3600, 2048), c).status, 0);
  EXPECT_EQ(c.python, "/home/u/venv/bin/python");
  EXPECT_EQ(FunctionConfigurationJson(c).value(kPythonField, ""), "/home/u/venv/bin/python");
  c.python = "";
  EXPECT_FALSE(FunctionConfigurationJson(c).contains(kPythonField)) << "the engine's own: absent";
  nlohmann::json relative = {{"GustPython", "venv/bin/python"}};
  RequestFields bad(relative);
  EXPECT_EQ(ApplyConfigFields(bad, Ceilings(3600, 2048), c).status, 400);
  nlohmann::json wrong_type = {{"GustPython", 3}};
  RequestFields typed(wrong_type);
  ApiError e = ApplyConfigFields(typed, Ceilings(3600, 2048), c);
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("GustPython"), std::string::npos) << e.message;
}

TEST(ValidationTest, PythonOfAFunction) {
  EXPECT_EQ(CheckPythonPath("", "GustPython").status, 0);
  EXPECT_EQ(CheckPythonPath("/opt/conda/envs/a/bin/python", "GustPython").status, 0);
  for (const std::string& bad : {std::string("python3"), std::string("/a\nb"),
                                 std::string("/a\0b", 4), "/" + std::string(4096, 'x')}) {
    ApiError e = CheckPythonPath(bad, kPythonField);
    EXPECT_EQ(e.type, "InvalidParameterValueException");
    EXPECT_EQ(e.message.rfind("GustPython must be the absolute path of a Python interpreter", 0),
              0u)
        << e.message;
  }
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

#include "common/json_read.h"

#include <gtest/gtest.h>

namespace gust {
namespace {

using nlohmann::json;

TEST(JsonReadTest, FindIsSafeOnAnyValue) {
  EXPECT_EQ(JsonFind(json(5), "a"), nullptr);
  EXPECT_EQ(JsonFind(json::array({1, 2}), "a"), nullptr);
  EXPECT_EQ(JsonFind(json::object(), "a"), nullptr);
  json doc = {{"a", 1}};
  ASSERT_NE(JsonFind(doc, "a"), nullptr);
  EXPECT_EQ(*JsonFind(doc, "a"), 1);
}

TEST(JsonReadTest, StringSaysAbsentWrongTypeOrOk) {
  json doc = {{"s", "x"}, {"n", 5}, {"z", nullptr}};
  std::string out = "untouched";
  EXPECT_EQ(JsonGetString(doc, "missing", &out), JsonGot::kAbsent);
  EXPECT_EQ(JsonGetString(doc, "z", &out), JsonGot::kAbsent);
  EXPECT_EQ(JsonGetString(doc, "n", &out), JsonGot::kWrongType);
  EXPECT_EQ(out, "untouched");
  EXPECT_EQ(JsonGetString(doc, "s", &out), JsonGot::kOk);
  EXPECT_EQ(out, "x");
  EXPECT_EQ(JsonGetString(json("not an object"), "s", &out), JsonGot::kAbsent);
}

TEST(JsonReadTest, IntRejectsFractionsAndOutOfRange) {
  json doc = json::parse(R"({"i": -3, "big": 18446744073709551615, "f": 1.5, "s": "7",
                              "max": 9223372036854775807})");
  int64_t out = 0;
  EXPECT_EQ(JsonGetInt(doc, "i", &out), JsonGot::kOk);
  EXPECT_EQ(out, -3);
  EXPECT_EQ(JsonGetInt(doc, "big", &out), JsonGot::kWrongType);
  EXPECT_EQ(JsonGetInt(doc, "f", &out), JsonGot::kWrongType);
  EXPECT_EQ(JsonGetInt(doc, "s", &out), JsonGot::kWrongType);
  EXPECT_EQ(JsonGetInt(doc, "max", &out), JsonGot::kOk);
  EXPECT_EQ(out, INT64_MAX);
}

TEST(JsonReadTest, BoolAndNumber) {
  json doc = {{"b", true}, {"bs", "false"}, {"d", 2.5}, {"i", 3}};
  bool b = false;
  EXPECT_EQ(JsonGetBool(doc, "bs", &b), JsonGot::kWrongType);
  EXPECT_EQ(JsonGetBool(doc, "b", &b), JsonGot::kOk);
  EXPECT_TRUE(b);
  double d = 0;
  EXPECT_EQ(JsonGetNumber(doc, "d", &d), JsonGot::kOk);
  EXPECT_EQ(d, 2.5);
  EXPECT_EQ(JsonGetNumber(doc, "i", &d), JsonGot::kOk);
  EXPECT_EQ(d, 3.0);
  EXPECT_EQ(JsonGetNumber(doc, "b", &d), JsonGot::kWrongType);
}

TEST(JsonReadTest, FallbacksOnWrongType) {
  json doc = {{"code", 5}, {"flag", "yes"}, {"n", "x"}};
  EXPECT_EQ(JsonStringOr(doc, "code", "dflt"), "dflt");
  EXPECT_EQ(JsonBoolOr(doc, "flag", true), true);
  EXPECT_EQ(JsonIntOr(doc, "n", 9), 9);
  EXPECT_EQ(JsonStringOr(json::array(), "code", "d"), "d");
}

TEST(JsonReadTest, DumpNeverThrowsOnInvalidUtf8) {
  json doc = {{"k", std::string("a\xff"
                                "b")}};
  EXPECT_THROW(doc.dump(), json::type_error);  // what the helper exists for
  EXPECT_EQ(JsonDump(doc),
            "{\"k\":\"a\xEF\xBF\xBD"
            "b\"}");
  EXPECT_EQ(JsonText(json("plain")), "plain");
  EXPECT_EQ(JsonText(json(12)), "12");
}

TEST(JsonReadTest, ParseRefusesDeepNestingAndGarbage) {
  EXPECT_TRUE(JsonParse("not json").is_discarded());
  EXPECT_TRUE(JsonParse("").is_discarded());
  EXPECT_EQ(JsonParse(R"({"a": [1, {"b": "]]]]"}]})")["a"][1]["b"], "]]]]");
  std::string deep(kMaxJsonDepth, '[');
  deep += std::string(kMaxJsonDepth, ']');
  EXPECT_FALSE(JsonParse(deep).is_discarded());
  EXPECT_TRUE(JsonParse("[" + deep + "]").is_discarded());
  // Brackets inside strings, escaped quotes included, do not count.
  std::string quoted = "\"\\\"" + std::string(10000, '[') + "\"";
  EXPECT_FALSE(JsonParse(quoted).is_discarded());
  // 256 KB of '[' (an async event's limit) is refused before it is parsed.
  EXPECT_TRUE(JsonParse(std::string(256 << 10, '[')).is_discarded());
}

TEST(JsonReadTest, NulIsNotTheEndOfInput) {
  // nlohmann's lexer stops at '\0': "{}\0junk" alone would be accepted as {}.
  const std::string nul_then_junk("{}\0junk", 7);
  EXPECT_TRUE(JsonParse(nul_then_junk).is_discarded());
  EXPECT_FALSE(JsonAccept(nul_then_junk));
  EXPECT_FALSE(JsonAccept(std::string("\"a\0b\"", 5)));  // raw NUL inside a string too
  EXPECT_TRUE(JsonAccept(R"({"a":"\u0000"})"));           // an escaped one is JSON
  EXPECT_FALSE(JsonAccept("{} x"));
  EXPECT_TRUE(JsonAccept(" [1, 2] "));
}

}  // namespace
}  // namespace gust

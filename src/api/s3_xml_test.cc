#include "api/s3_xml.h"

#include <gtest/gtest.h>

namespace gust::api {
namespace {

TEST(S3XmlTest, EscapesMarkupAndControlBytes) {
  EXPECT_EQ(XmlEscape("a&b<c>\"d'\r\n"), "a&amp;b&lt;c&gt;&quot;d&apos;&#13;&#10;");
  EXPECT_EQ(XmlEscape("caf\xc3\xa9/x"), "caf\xc3\xa9/x");
}

TEST(S3XmlTest, ParsesCompleteMultipartUploadAsBotocoreSendsIt) {
  auto parts = ParseCompleteMultipartUpload(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Part><ETag>&quot;abc&quot;</ETag><PartNumber>1</PartNumber></Part>"
      "<!-- a comment --><Part><ETag>\"def\"</ETag><PartNumber> 2 </PartNumber></Part>"
      "</CompleteMultipartUpload>");
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0], std::make_pair(1, std::string("\"abc\"")));
  EXPECT_EQ((*parts)[1], std::make_pair(2, std::string("\"def\"")));
}

TEST(S3XmlTest, ParsesDeleteWithEntitiesAndQuiet) {
  auto req = ParseDeleteObjects(
      "<Delete><Object><Key>a&amp;b&#13;&#x41;</Key></Object><Object><Key>../x</Key></Object>"
      "<Quiet>true</Quiet></Delete>");
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_TRUE(req->quiet);
  EXPECT_EQ(req->keys, (std::vector<std::string>{"a&b\rA", "../x"}));
}

TEST(S3XmlTest, RefusesMalformedDocumentsWithMalformedXml) {
  for (const char* bad : {"", "<Delete>", "<Delete><Object><Key>a</Object></Delete>",
                          "<Delete></Delete>", "<!DOCTYPE x [<!ENTITY a \"b\">]><Delete/>",
                          "<Delete><Object><Key>&bogus;</Key></Object></Delete>",
                          "<Delete><Object><Key>&#xFFFFFFFF;</Key></Object></Delete>", "<Other/>",
                          "<Delete><Object><Key>a</Key></Object></Delete>trailing"}) {
    auto req = ParseDeleteObjects(bad);
    ASSERT_FALSE(req.ok()) << bad;
    EXPECT_EQ(req.status().message().rfind("MalformedXML: ", 0), 0u) << req.status().message();
  }
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "<a>";
  EXPECT_FALSE(ParseXml(deep).ok());
  auto parts = ParseCompleteMultipartUpload(
      "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part>"
      "</CompleteMultipartUpload>");
  EXPECT_FALSE(parts.ok());
}

TEST(S3XmlTest, RefusesMoreThanAThousandKeys) {
  std::string doc = "<Delete>";
  for (int i = 0; i < 1001; ++i) doc += "<Object><Key>k</Key></Object>";
  doc += "</Delete>";
  EXPECT_FALSE(ParseDeleteObjects(doc).ok());
}

}  // namespace
}  // namespace gust::api

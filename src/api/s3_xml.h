// The XML of the S3 API (src/api/s3_api.h): escaping for the documents the
// engine writes, and a small reader for the two documents clients send
// (CompleteMultipartUpload's part list, DeleteObjects' key list).
//
// The reader takes elements, text, the five predefined entities and numeric
// character references; it skips the XML declaration, comments and
// attributes (xmlns), and refuses DOCTYPEs (no entity expansion), CDATA,
// mismatched tags and nesting deeper than 16: a MalformedXML error naming the
// problem, as S3 answers.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gust::api {

// Text or attribute value with &, <, >, ", ' and control characters escaped
// (a key may hold any byte; XML 1.0 cannot carry some of them even escaped,
// which is why clients ask for encoding-type=url).
std::string XmlEscape(std::string_view text);

struct XmlElement {
  std::string name;  // without a namespace prefix
  std::string text;  // the element's own text, entities decoded
  std::vector<XmlElement> children;
  // The first child of that name, or null.
  const XmlElement* Child(std::string_view child_name) const;
};

// InvalidArgument "MalformedXML: ..." when the document is not one element.
Result<XmlElement> ParseXml(std::string_view xml);

// <CompleteMultipartUpload><Part><PartNumber>N</PartNumber><ETag>E</ETag></Part>...
Result<std::vector<std::pair<int, std::string>>> ParseCompleteMultipartUpload(std::string_view xml);

struct DeleteRequest {
  std::vector<std::string> keys;
  bool quiet = false;
};
// <Delete><Quiet>true</Quiet><Object><Key>K</Key></Object>...; at most 1000 keys.
Result<DeleteRequest> ParseDeleteObjects(std::string_view xml);

}  // namespace gust::api

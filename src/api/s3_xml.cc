#include "api/s3_xml.h"

#include <charconv>
#include <cstdio>

namespace gust::api {

namespace {

constexpr int kMaxDepth = 16;
constexpr size_t kMaxDeleteKeys = 1000;

Status Malformed(const std::string& why) {
  return Status::InvalidArgument(
      "MalformedXML: The XML you provided was not well-formed or did not validate against our "
      "published schema (" +
      why + ")");
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Decodes text between tags into *out.
Status DecodeText(std::string_view text, std::string* out) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out->push_back(text[i]);
      continue;
    }
    size_t end = text.find(';', i);
    if (end == std::string_view::npos || end - i > 12) return Malformed("unterminated entity");
    std::string_view name = text.substr(i + 1, end - i - 1);
    if (name == "amp") {
      out->push_back('&');
    } else if (name == "lt") {
      out->push_back('<');
    } else if (name == "gt") {
      out->push_back('>');
    } else if (name == "quot") {
      out->push_back('"');
    } else if (name == "apos") {
      out->push_back('\'');
    } else if (name.size() > 1 && name[0] == '#') {
      bool hex = name[1] == 'x';
      std::string_view digits = name.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (ec != std::errc() || p != digits.data() + digits.size() || digits.empty() ||
          cp > 0x10ffff) {
        return Malformed("bad character reference &" + std::string(name) + ";");
      }
      AppendUtf8(cp, out);
    } else {
      return Malformed("unknown entity &" + std::string(name) + ";");
    }
    i = end;
  }
  return Status::Ok();
}

class Parser {
 public:
  explicit Parser(std::string_view xml) : s_(xml) {}

  Result<XmlElement> Document() {
    SkipMisc();
    if (pos_ >= s_.size() || s_[pos_] != '<') return Malformed("no root element");
    XmlElement root;
    GUST_RETURN_IF_ERROR(Element(&root, 0));
    SkipMisc();
    if (pos_ != s_.size()) return Malformed("content after the root element");
    return root;
  }

 private:
  // Whitespace, the declaration and comments between elements.
  void SkipMisc() {
    for (;;) {
      while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (s_.compare(pos_, 2, "<?") == 0) {
        size_t end = s_.find("?>", pos_);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
      } else if (s_.compare(pos_, 4, "<!--") == 0) {
        size_t end = s_.find("-->", pos_);
        pos_ = end == std::string_view::npos ? s_.size() : end + 3;
      } else {
        return;
      }
    }
  }

  // At '<' of a start tag.
  Status Element(XmlElement* out, int depth) {
    if (depth >= kMaxDepth) return Malformed("nested too deep");
    if (s_.compare(pos_, 2, "<!") == 0) return Malformed("DOCTYPE and CDATA are not accepted");
    size_t end = s_.find('>', pos_);
    if (end == std::string_view::npos) return Malformed("unterminated tag");
    std::string_view tag = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    bool empty = !tag.empty() && tag.back() == '/';
    if (empty) tag.remove_suffix(1);
    size_t name_end = 0;
    while (name_end < tag.size() && !std::isspace(static_cast<unsigned char>(tag[name_end]))) {
      ++name_end;
    }
    std::string_view qname = tag.substr(0, name_end);
    if (qname.empty()) return Malformed("a tag without a name");
    size_t colon = qname.find(':');
    out->name = std::string(colon == std::string_view::npos ? qname : qname.substr(colon + 1));
    if (empty) return Status::Ok();
    for (;;) {
      size_t lt = s_.find('<', pos_);
      if (lt == std::string_view::npos) return Malformed("element <" + out->name + "> not closed");
      GUST_RETURN_IF_ERROR(DecodeText(s_.substr(pos_, lt - pos_), &out->text));
      pos_ = lt;
      if (s_.compare(pos_, 4, "<!--") == 0) {
        size_t close = s_.find("-->", pos_);
        if (close == std::string_view::npos) return Malformed("unterminated comment");
        pos_ = close + 3;
        continue;
      }
      if (s_.compare(pos_, 2, "</") == 0) {
        size_t close = s_.find('>', pos_);
        if (close == std::string_view::npos) return Malformed("unterminated end tag");
        std::string_view closing = s_.substr(pos_ + 2, close - pos_ - 2);
        while (!closing.empty() && std::isspace(static_cast<unsigned char>(closing.back()))) {
          closing.remove_suffix(1);
        }
        if (closing != qname) {
          return Malformed("</" + std::string(closing) + "> closes <" + std::string(qname) + ">");
        }
        pos_ = close + 1;
        return Status::Ok();
      }
      out->children.emplace_back();
      GUST_RETURN_IF_ERROR(Element(&out->children.back(), depth + 1));
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "&#%d;", static_cast<int>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const XmlElement& child : children) {
    if (child.name == child_name) return &child;
  }
  return nullptr;
}

Result<XmlElement> ParseXml(std::string_view xml) { return Parser(xml).Document(); }

Result<std::vector<std::pair<int, std::string>>> ParseCompleteMultipartUpload(
    std::string_view xml) {
  GUST_ASSIGN_OR_RETURN(XmlElement root, ParseXml(xml));
  if (root.name != "CompleteMultipartUpload") {
    return Malformed("the root element is <" + root.name + ">, not <CompleteMultipartUpload>");
  }
  std::vector<std::pair<int, std::string>> parts;
  for (const XmlElement& part : root.children) {
    if (part.name != "Part") continue;
    const XmlElement* number = part.Child("PartNumber");
    const XmlElement* etag = part.Child("ETag");
    if (number == nullptr || etag == nullptr)
      return Malformed("a <Part> needs PartNumber and ETag");
    std::string_view digits = Trim(number->text);
    int n = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || p != digits.data() + digits.size()) {
      return Malformed("PartNumber '" + std::string(digits) + "' is not a number");
    }
    parts.emplace_back(n, std::string(Trim(etag->text)));
  }
  return parts;
}

Result<DeleteRequest> ParseDeleteObjects(std::string_view xml) {
  GUST_ASSIGN_OR_RETURN(XmlElement root, ParseXml(xml));
  if (root.name != "Delete")
    return Malformed("the root element is <" + root.name + ">, not <Delete>");
  DeleteRequest out;
  for (const XmlElement& child : root.children) {
    if (child.name == "Quiet") {
      out.quiet = Trim(child.text) == "true";
    } else if (child.name == "Object") {
      const XmlElement* key = child.Child("Key");
      if (key == nullptr) return Malformed("an <Object> needs a <Key>");
      out.keys.push_back(key->text);
    }
  }
  if (out.keys.empty()) return Malformed("no <Object> to delete");
  if (out.keys.size() > kMaxDeleteKeys) {
    return Malformed(std::to_string(out.keys.size()) + " keys; at most 1000 per request");
  }
  return out;
}

}  // namespace gust::api

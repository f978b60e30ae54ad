#include "store/arn.h"

#include <vector>

namespace gust {

std::string FunctionArn(const std::string& name, const std::string& qualifier) {
  std::string arn = "arn:aws:lambda:";
  arn += kRegion;
  arn += ':';
  arn += kAccountId;
  arn += ":function:";
  arn += name;
  if (!qualifier.empty()) {
    arn += ':';
    arn += qualifier;
  }
  return arn;
}

bool ParseFunctionArn(const std::string& arn, std::string* name, std::string* qualifier) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t colon = arn.find(':', start);
    parts.push_back(
        arn.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 7 || parts.size() > 8 || parts[0] != "arn" || parts[2] != "lambda" ||
      parts[5] != "function" || parts[6].empty()) {
    return false;
  }
  *name = parts[6];
  *qualifier = parts.size() == 8 ? parts[7] : "";
  return parts.size() == 7 || !qualifier->empty();
}

}  // namespace gust

#include "store/arn.h"

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

}  // namespace gust

// Lambda-style ARNs for gust's single region/account. Error messages and API
// responses use them so that clients written for Lambda parse them unchanged.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

namespace gust {

inline constexpr const char* kRegion = "us-east-1";
inline constexpr const char* kAccountId = "000000000000";

// "arn:aws:lambda:us-east-1:000000000000:function:NAME", with ":QUALIFIER"
// appended when qualifier (a version or an alias) is non-empty.
std::string FunctionArn(const std::string& name, const std::string& qualifier = "");

// The function name and qualifier ("" if none) of a Lambda function ARN
// "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]"; false if arn is
// not one.
bool ParseFunctionArn(const std::string& arn, std::string* name, std::string* qualifier);

}  // namespace gust

// Base64 (RFC 4648, standard alphabet, padded): ZipFile in CreateFunction,
// X-Amz-Log-Result, X-Amz-Client-Context, binary HTTP bodies. Reentrant.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace gust {

std::string Base64Encode(std::string_view bytes);
// InvalidArgument naming the offset of the first bad character. Whitespace is skipped.
Result<std::string> Base64Decode(std::string_view text);
// Hex string ("a0ff") to raw bytes; InvalidArgument if not hex.
Result<std::string> HexDecode(std::string_view hex);

}  // namespace gust

// Reading JSON that came from outside gust — a client's request, a function's
// answer, a file — without exceptions (docs/STYLE.md: outside input is
// handled, never a crash). nlohmann's value() and get<T>() throw
// type_error on a value of another type, operator[] on a const object is
// undefined for a missing key, and dump() throws on a string that is not
// UTF-8. An exception on the engine thread or the worker pool ends the engine
// and every function on it, so untrusted JSON is read only through these
// accessors, or through nlohmann's calls on a value whose type was just
// checked (is_string() then get<std::string>()).
//
// The typed getters say what they found (absent, wrong type, ok) so a
// caller can answer "field X must be a string" instead of guessing; the
// *Or forms are for input whose wrong type simply means "use the default"
// (e.g. the error document a function's runtime sent).
//
// Thread-safety: stateless functions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace gust {

// Deeper nesting than this is refused by JsonParse. nlohmann parses
// iteratively, but copies, compares and dumps recurse: a 256 KB event of
// "[[[[..." would overflow the engine thread's stack when dumped back out.
// Python's json module stops near the same depth (its recursion limit).
inline constexpr int kMaxJsonDepth = 512;

// Parses text without exceptions. A value that is not JSON, or is nested
// deeper than max_depth, comes back discarded (is_discarded()).
// A NUL byte anywhere is refused: nlohmann's lexer takes '\0' as the end of
// input, so "{}\0junk" would otherwise parse as {} (JSON text never holds a
// raw NUL: outside strings it is not whitespace, inside it must be escaped).
nlohmann::json JsonParse(std::string_view text, int max_depth = kMaxJsonDepth);

// Whether text is one JSON value and nothing else (NUL refused as above),
// without building it: for input passed on verbatim or spliced.
bool JsonAccept(std::string_view text);

enum class JsonGot {
  kAbsent,     // no such member, the member is null, or the value is not an object
  kWrongType,  // present with another type (or an integer out of int64 range)
  kOk,
};

// The member `key` of `obj`; nullptr when obj is not an object or has no such
// member.
const nlohmann::json* JsonFind(const nlohmann::json& obj, std::string_view key);

// Typed members. `out` is written only on kOk. JsonGetInt accepts integers
// that fit int64 (not 1.5, not 2^63); JsonGetNumber any number.
JsonGot JsonGetString(const nlohmann::json& obj, std::string_view key, std::string* out);
JsonGot JsonGetInt(const nlohmann::json& obj, std::string_view key, int64_t* out);
JsonGot JsonGetBool(const nlohmann::json& obj, std::string_view key, bool* out);
JsonGot JsonGetNumber(const nlohmann::json& obj, std::string_view key, double* out);

// The member if it has the type, else `fallback` (absent or wrong type).
std::string JsonStringOr(const nlohmann::json& obj, std::string_view key, std::string fallback);
int64_t JsonIntOr(const nlohmann::json& obj, std::string_view key, int64_t fallback);
bool JsonBoolOr(const nlohmann::json& obj, std::string_view key, bool fallback);

// Serializes without throwing: bytes that are not UTF-8 become U+FFFD.
std::string JsonDump(const nlohmann::json& value);
// A string's contents as they are; any other value serialized (JsonDump).
std::string JsonText(const nlohmann::json& value);

}  // namespace gust

#include "common/ids.h"

#include <cstdint>
#include <random>

namespace gust {
namespace {

std::mt19937_64& Generator() {
  thread_local std::mt19937_64 gen([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }());
  return gen;
}

void AppendHex(std::string& out, uint64_t v, int nibbles) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = nibbles - 1; i >= 0; --i) out.push_back(kHex[(v >> (i * 4)) & 0xf]);
}

}  // namespace

std::string NewRequestId() {
  uint64_t hi = Generator()();
  uint64_t lo = Generator()();
  hi = (hi & ~0xf000ULL) | 0x4000ULL;            // version 4
  lo = (lo & ~(0xcULL << 60)) | (0x8ULL << 60);  // variant 10xx
  std::string out;
  out.reserve(36);
  AppendHex(out, hi >> 32, 8);
  out.push_back('-');
  AppendHex(out, (hi >> 16) & 0xffff, 4);
  out.push_back('-');
  AppendHex(out, hi & 0xffff, 4);
  out.push_back('-');
  AppendHex(out, lo >> 48, 4);
  out.push_back('-');
  AppendHex(out, lo & 0xffffffffffffULL, 12);
  return out;
}

std::string RandomHex(int bytes) {
  std::string out;
  out.reserve(bytes * 2);
  while (bytes > 0) {
    int take = bytes >= 8 ? 8 : bytes;
    AppendHex(out, Generator()(), take * 2);
    bytes -= take;
  }
  return out;
}

}  // namespace gust

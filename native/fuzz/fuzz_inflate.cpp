// libFuzzer target for bounded inflation of compressed gRPC messages
// (native/src/codec/inflate.cpp). The first byte picks gzip or deflate and
// how the rest is sliced; the limit is small, so bombs are common.
// Contract: OK with at most the limit in `out`, RESOURCE_EXHAUSTED past it,
// INVALID_ARGUMENT for anything that is not a complete stream; nothing
// crashes, leaks or reads out of bounds (ASan/UBSan).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "ovfast/codec/inflate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ovfast;
  if (size < 1) return 0;
  const auto kind = (data[0] & 1) ? MessageCompression::GZIP : MessageCompression::DEFLATE;
  const size_t step = 1 + (data[0] >> 1);
  std::vector<ByteRange> pieces;
  for (size_t at = 1; at < size; at += step) pieces.push_back({data + at, std::min(step, size - at)});
  const size_t limit = 1 << 16;
  std::string out;
  Status st = inflate_message(pieces, kind, limit, &out);
  if (st.is_ok() && out.size() > limit) std::abort();
  if (!st.is_ok() && st.code() != StatusCode::INVALID_ARGUMENT && st.code() != StatusCode::RESOURCE_EXHAUSTED)
    std::abort();
  return 0;
}

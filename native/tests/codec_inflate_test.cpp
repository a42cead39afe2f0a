// Bounded inflation of compressed gRPC messages (ovfast/codec/inflate.hpp).
// Streams are made with zlib's own deflate, as a gRPC client makes them.
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "ovfast/codec/inflate.hpp"

namespace ovfast {
namespace {

std::string compress(const std::string& in, MessageCompression kind) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, kind == MessageCompression::GZIP ? 31 : 15, 9,
                         Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// `s` cut into `n` pieces, as a message arrives in several slices.
std::vector<ByteRange> pieces(const std::string& s, size_t n) {
  std::vector<ByteRange> out;
  const size_t step = s.size() / n + 1;
  for (size_t at = 0; at < s.size(); at += step)
    out.push_back({reinterpret_cast<const uint8_t*>(s.data()) + at, std::min(step, s.size() - at)});
  return out;
}

std::string sample(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (auto& c : s) { x = x * 1103515245 + 12345; c = static_cast<char>((x >> 16) % 7); }
  return s;
}

TEST(Inflate, GzipAndDeflateRoundTripAcrossSlices) {
  const std::string msg = sample(300000);
  for (MessageCompression kind : {MessageCompression::GZIP, MessageCompression::DEFLATE}) {
    const std::string z = compress(msg, kind);
    for (size_t n : {1, 3, 1000}) {
      std::string out = "stale";
      Status st = inflate_message(pieces(z, n), kind, msg.size(), &out);
      ASSERT_TRUE(st.is_ok()) << st.message();
      EXPECT_EQ(out, msg);
    }
  }
}

TEST(Inflate, EmptyMessage) {
  std::string out = "stale";
  ASSERT_TRUE(inflate_message(pieces(compress("", MessageCompression::GZIP), 1), MessageCompression::GZIP, 0, &out).is_ok());
  EXPECT_TRUE(out.empty());
}

// The bomb: a little on the wire, past the limit once inflated. It
// is refused while inflating, before any output buffer is allocated.
TEST(Inflate, ABombIsRefusedWithoutAllocatingItsSize) {
  const std::string zeros(64 << 20, '\0');
  const std::string z = compress(zeros, MessageCompression::GZIP);
  ASSERT_LT(z.size(), 100u * 1024);
  std::string out;
  Status st = inflate_message(pieces(z, 4), MessageCompression::GZIP, 1 << 20, &out);
  EXPECT_EQ(st.code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.message().find("Received message larger than max (more than 1048576 bytes once decompressed)"),
            std::string::npos) << st.message();
  EXPECT_EQ(out.capacity(), std::string().capacity()) << "an output buffer was allocated";
  // exactly at the limit it passes
  ASSERT_TRUE(inflate_message(pieces(z, 4), MessageCompression::GZIP, zeros.size(), &out).is_ok());
  EXPECT_EQ(out.size(), zeros.size());
}

TEST(Inflate, CorruptOrTruncatedStreamsAreInvalidArgument) {
  const std::string z = compress(sample(10000), MessageCompression::GZIP);
  std::string out;
  EXPECT_EQ(inflate_message(pieces(z.substr(0, z.size() / 2), 2), MessageCompression::GZIP, 1 << 20, &out).code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(inflate_message(pieces(z, 1), MessageCompression::DEFLATE, 1 << 20, &out).code(),
            StatusCode::INVALID_ARGUMENT);  // a gzip stream is not a zlib one
  const std::string garbage(1000, 'x');
  Status st = inflate_message(pieces(garbage, 1), MessageCompression::GZIP, 1 << 20, &out);
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.message().find("not a complete gzip stream"), std::string::npos) << st.message();
  EXPECT_EQ(inflate_message({}, MessageCompression::GZIP, 1 << 20, &out).code(), StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace ovfast

// BytesElements (ovfast/bytes_elements.hpp): BYTES elements located in a
// request without copying them — length-prefixed buffers (KServe raw
// contents) and protobuf fields (KServe bytes_contents, TFS string_val) —
// their count and in-memory cost known up front, written out only on demand.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "codec_helpers.hpp"
#include "ovfast/bytes_elements.hpp"

namespace ovfast {
namespace {

using namespace testkit;

Status prefixed(const std::string& buf, BytesElements* out) {
  return BytesElements::prefixed(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), "s", out);
}

bool in_field(const std::string& msg, uint32_t outer, uint32_t field, BytesElements* out) {
  return BytesElements::in_field(reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), outer, field, out);
}

bool inside(std::string_view v, const std::string& buf) {
  return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size();
}

TEST(BytesElementsPrefixed, LocatesEveryElementInPlace) {
  const std::vector<std::string> elements = {"abc", "", std::string(300, 'q'), std::string("\0\x01", 2)};
  const std::string buf = framed(elements);
  BytesElements e;
  ASSERT_TRUE(prefixed(buf, &e).is_ok());
  EXPECT_EQ(e.count(), 4u);
  EXPECT_EQ(e.payload_bytes(), 305u);
  EXPECT_EQ(elements_of(e), elements);
  for (std::string_view v : e.views()) EXPECT_TRUE(v.empty() || inside(v, buf));
}

TEST(BytesElementsPrefixed, AnEmptyBufferHoldsNoElement) {
  BytesElements e;
  ASSERT_TRUE(BytesElements::prefixed(nullptr, 0, "s", &e).is_ok());
  EXPECT_EQ(e.count(), 0u);
  EXPECT_TRUE(elements_of(e).empty());
  EXPECT_EQ(e.string_tensor_bytes(), 0u);
}

TEST(BytesElementsPrefixed, MalformedLengthPrefixesAreReportedWithTheirOffset) {
  BytesElements e;
  std::string buf = framed({"abcd"}) + std::string("\x01\x00", 2);  // second prefix cut after 2 bytes
  expect_invalid(prefixed(buf, &e), "Invalid BYTES content of input s - truncated 4-byte length prefix at offset 8");

  buf = framed({"ab"});
  buf[0] = 9;  // claims 9 bytes, 2 follow
  expect_invalid(prefixed(buf, &e), "element of 9 bytes at offset 0 exceeds the buffer");

  buf = framed({"ab"});
  buf[3] = '\xff';  // a length near 4 GiB must not wrap the bounds check
  expect_invalid(prefixed(buf, &e), "exceeds the buffer");

  buf = framed({"x", "yz"});
  buf.pop_back();  // the last element loses a byte
  expect_invalid(prefixed(buf, &e), "element of 2 bytes at offset 5 exceeds the buffer");

  expect_invalid(prefixed(std::string("\0\0\0", 3), &e), "truncated 4-byte length prefix at offset 0");
}

TEST(BytesElementsPrefixed, AFailedLocateLeavesTheOutputAlone) {
  const std::string good = framed({"kept"});
  BytesElements e;
  ASSERT_TRUE(prefixed(good, &e).is_ok());
  EXPECT_FALSE(prefixed(std::string("\x05", 1), &e).is_ok());
  EXPECT_EQ(elements_of(e), std::vector<std::string>{"kept"});
}

TEST(BytesElementsField, TakesTheFieldFromTheMessageOrFromEachOuterMessage) {
  // TFS: string_val (8) straight in the TensorProto, other fields skipped
  const std::string tensor = Msg().varint(1, 7).bytes(8, "ab").varint(3, 1).bytes(8, "").bytes(8, "cde").str();
  BytesElements e;
  ASSERT_TRUE(in_field(tensor, 0, 8, &e));
  EXPECT_EQ(elements_of(e), (std::vector<std::string>{"ab", "", "cde"}));
  EXPECT_EQ(e.payload_bytes(), 5u);
  for (std::string_view v : e.views()) EXPECT_TRUE(v.empty() || inside(v, tensor));

  // KServe: bytes_contents (8) of each contents (5) message, in order
  const std::string input = Msg().bytes(1, "s").msg(5, Msg().bytes(8, "a").bytes(8, "b")).bytes(2, "BYTES")
                                .msg(5, Msg().bytes(8, "c")).str();
  ASSERT_TRUE(in_field(input, 5, 8, &e));
  EXPECT_EQ(elements_of(e), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(BytesElementsField, OccurrencesNotLengthDelimitedOrCutShortAreMalformed) {
  BytesElements e;
  EXPECT_FALSE(in_field(Msg().bytes(8, "a").varint(8, 3).str(), 0, 8, &e));      // a varint string_val
  EXPECT_FALSE(in_field(Msg().varint(5, 1).str(), 5, 8, &e));                    // a varint contents
  EXPECT_FALSE(in_field(std::string("\x42\x05" "ab", 4), 0, 8, &e));             // length past the end
  EXPECT_FALSE(in_field(Msg().msg(5, Msg().raw(std::string("\x42\x09", 2))).str(), 5, 8, &e));
  EXPECT_TRUE(in_field(std::string(), 0, 8, &e));
  EXPECT_EQ(e.count(), 0u);
}

TEST(BytesElementsCost, OneStringEachPlusTheLongElementsHeapCopies) {
  BytesElements e;
  const std::string buf = framed({"", std::string(15, 'a'), std::string(16, 'b'), std::string(100, 'c')});
  ASSERT_TRUE(prefixed(buf, &e).is_ok());
  // 15 characters fit a std::string inline; 16 and 100 go to the heap with their terminator
  EXPECT_EQ(e.string_tensor_bytes(), 4 * sizeof(std::string) + 17 + 101);
}

TEST(BytesElementsWrite, AssignsIntoAnExistingStringArray) {
  const std::string buf = framed({"x", std::string(40, 'y')});
  BytesElements e;
  ASSERT_TRUE(prefixed(buf, &e).is_ok());
  std::vector<std::string> dst = {"old", "older"};
  e.write_to(dst.data());
  EXPECT_EQ(dst, (std::vector<std::string>{"x", std::string(40, 'y')}));
  std::vector<std::string> seen;
  e.for_each([&](std::string_view v) { seen.emplace_back(v); });
  EXPECT_EQ(seen, dst);
}

}  // namespace
}  // namespace ovfast

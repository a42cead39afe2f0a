// ovfast/codec/wire.hpp: the bounds-checked protobuf reader, the scalar walker that
// accepts packed and unpacked repeated fields, UTF-8 validation, and the
// writer (checked against the independent test decoder).
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "ovfast/codec/wire.hpp"
#include "proto_builder.hpp"

namespace ovfast {
namespace {

using namespace testkit;
using wire::Reader;
using wire::Span;
using wire::WireType;

// The Reader views `s`, which must outlive it (a temporary would dangle).
Reader reader(const std::string& s) { return Reader(std::string_view(s)); }
Reader reader(std::string&&) = delete;

TEST(WireReader, VarintsUpToTenBytes) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{300},
                     uint64_t{1} << 35, std::numeric_limits<uint64_t>::max()}) {
    std::string s;
    put_varint(s, v);
    Reader r = reader(s);
    uint64_t got = 0;
    ASSERT_TRUE(r.varint(&got)) << v;
    EXPECT_EQ(got, v);
    EXPECT_TRUE(r.done());
    EXPECT_TRUE(r.ok());
  }
}

TEST(WireReader, VarintLongerThanTenBytesFails) {
  const std::string s = std::string(10, '\x80') + '\x01';  // no terminator within 64 bits
  Reader r = reader(s);
  uint64_t v;
  EXPECT_FALSE(r.varint(&v));
  EXPECT_FALSE(r.ok());
}

TEST(WireReader, TruncatedVarintFails) {
  const std::string s = "\x80\x80";
  Reader r = reader(s);
  uint64_t v;
  EXPECT_FALSE(r.varint(&v));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.done());  // a failed reader reports done so loops stop
}

TEST(WireReader, FixedWidthNeedsEnoughBytes) {
  const std::string eight("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  Reader ok = reader(eight);
  uint64_t v64;
  ASSERT_TRUE(ok.fixed64(&v64));
  EXPECT_EQ(v64, 0x0807060504030201ULL);
  const std::string three = eight.substr(0, 3), seven = eight.substr(0, 7);
  Reader short32 = reader(three);
  uint32_t v32;
  EXPECT_FALSE(short32.fixed32(&v32));
  Reader short64 = reader(seven);
  EXPECT_FALSE(short64.fixed64(&v64));
}

TEST(WireReader, BytesViewIntoTheBufferAndRejectOverrun) {
  const std::string s = Msg().bytes(1, "hello").str();
  Reader r = reader(s);
  uint32_t f;
  WireType t;
  ASSERT_TRUE(r.next(&f, &t));
  EXPECT_EQ(f, 1u);
  EXPECT_EQ(t, wire::LEN);
  std::string_view v;
  ASSERT_TRUE(r.view(&v));
  EXPECT_EQ(v, "hello");
  EXPECT_EQ(v.data(), s.data() + 2);  // a view, not a copy

  const std::string overrun("\x0a\x06hello", 7);  // says 6 bytes, has 5
  Reader over = reader(overrun);
  ASSERT_TRUE(over.next(&f, &t));
  EXPECT_FALSE(over.view(&v));
  EXPECT_FALSE(over.ok());
}

TEST(WireReader, HugeLengthDoesNotWrapThePointer) {
  std::string s = "\x0a";
  put_varint(s, std::numeric_limits<uint64_t>::max() - 1);
  s += "abc";
  Reader r = reader(s);
  uint32_t f;
  WireType t;
  ASSERT_TRUE(r.next(&f, &t));
  const uint8_t* d;
  size_t n;
  EXPECT_FALSE(r.bytes(&d, &n));
}

TEST(WireReader, FieldZeroAndGroupsAreErrors) {
  const std::string zero_tag("\x00\x01", 2);
  Reader zero = reader(zero_tag);
  uint32_t f;
  WireType t;
  EXPECT_FALSE(zero.next(&f, &t));
  EXPECT_FALSE(zero.ok());

  const std::string group_tag = Msg().tag(2, wire::SGROUP).str();
  Reader group = reader(group_tag);
  ASSERT_TRUE(group.next(&f, &t));
  EXPECT_EQ(t, wire::SGROUP);
  EXPECT_FALSE(group.skip(t));
  EXPECT_FALSE(group.ok());
}

TEST(WireReader, SkipsEveryScalarWireType) {
  const std::string s = Msg().varint(1, 300).fixed32(2, 7).fixed64(3, 9).bytes(4, "xy").varint(5, 42).str();
  Reader r = reader(s);
  uint32_t f;
  WireType t;
  uint64_t last = 0;
  while (r.next(&f, &t)) {
    if (f == 5) {
      ASSERT_TRUE(r.varint(&last));
    } else {
      ASSERT_TRUE(r.skip(t)) << f;
    }
  }
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(last, 42u);
}

// for_each_scalar over a whole serialized message.
template <typename Fn>
bool scalars(const std::string& s, uint32_t field, WireType t, Fn&& fn) {
  return wire::for_each_scalar(reinterpret_cast<const uint8_t*>(s.data()), s.size(), field, t, fn);
}

TEST(WireScalars, PackedAndUnpackedOccurrencesConcatenateInOrder) {
  const std::string s = Msg().varint(3, 1).packed_varints(3, {2, 300}).varint(9, 99).varint(3, 4).str();
  std::vector<uint64_t> got;
  ASSERT_TRUE(scalars(s, 3, wire::VARINT, [&](uint64_t v) { got.push_back(v); }));
  EXPECT_EQ(got, (std::vector<uint64_t>{1, 2, 300, 4}));
}

TEST(WireScalars, Fixed32PackedAndSingle) {
  const std::string s = Msg().fixed32(6, 0xdeadbeef).bytes(6, std::string("\x01\x00\x00\x00\x02\x00\x00\x00", 8)).str();
  std::vector<uint64_t> got;
  ASSERT_TRUE(scalars(s, 6, wire::FIXED32, [&](uint64_t v) { got.push_back(v); }));
  EXPECT_EQ(got, (std::vector<uint64_t>{0xdeadbeef, 1, 2}));
}

TEST(WireScalars, BadPackingIsRejected) {
  // 5 bytes cannot hold whole fixed32 values
  const std::string partial = Msg().bytes(6, std::string("\x01\x00\x00\x00\x02", 5)).str();
  EXPECT_FALSE(scalars(partial, 6, wire::FIXED32, [](uint64_t) {}));
  // a packed varint run that ends mid-value
  const std::string cut = Msg().bytes(2, "\x81").str();
  EXPECT_FALSE(scalars(cut, 2, wire::VARINT, [](uint64_t) {}));
  // an occurrence with the wrong wire type (fixed64 where varints are expected)
  const std::string wrong = Msg().fixed64(2, 5).str();
  EXPECT_FALSE(scalars(wrong, 2, wire::VARINT, [](uint64_t) {}));
}

TEST(WireScalars, MalformedMessageAroundTheValuesIsRejected) {
  const std::string truncated = Msg().varint(3, 1).str() + "\x1a\x05\x01";  // field 3, LEN 5, 1 byte
  EXPECT_FALSE(scalars(truncated, 3, wire::VARINT, [](uint64_t) {}));
}

TEST(WireOccurrences, VisitsEveryOccurrenceAndStopsWhenAsked) {
  const std::string s = Msg().bytes(8, "a").varint(1, 7).bytes(8, "").bytes(8, "bc").str();
  std::vector<std::string> got;
  auto collect = [&](const Span& sp) { got.emplace_back(reinterpret_cast<const char*>(sp.data), sp.len); return true; };
  ASSERT_TRUE(wire::for_each_occurrence(reinterpret_cast<const uint8_t*>(s.data()), s.size(), 8, collect));
  EXPECT_EQ(got, (std::vector<std::string>{"a", "", "bc"}));
  EXPECT_FALSE(wire::for_each_occurrence(reinterpret_cast<const uint8_t*>(s.data()), s.size(), 8,
                                         [](const Span&) { return false; }));
  EXPECT_EQ(wire::packed_varint_count(reinterpret_cast<const uint8_t*>("\x01\x81\x01\x7f"), 4), 3u);
}

TEST(WireUtf8, AcceptsWellFormedText) {
  EXPECT_TRUE(wire::valid_utf8(""));
  EXPECT_TRUE(wire::valid_utf8("model-1"));
  EXPECT_TRUE(wire::valid_utf8("\xc3\xa9"));              // é
  EXPECT_TRUE(wire::valid_utf8("\xe2\x82\xac"));          // €
  EXPECT_TRUE(wire::valid_utf8("\xf0\x9f\x98\x80"));      // U+1F600
  EXPECT_TRUE(wire::valid_utf8("\xf4\x8f\xbf\xbf"));      // U+10FFFF, the last code point
}

TEST(WireUtf8, RejectsMalformedText) {
  EXPECT_FALSE(wire::valid_utf8("\x80"));                 // lone continuation byte
  EXPECT_FALSE(wire::valid_utf8("\xc0\x80"));             // overlong NUL
  EXPECT_FALSE(wire::valid_utf8("\xe0\x80\xaf"));         // overlong '/'
  EXPECT_FALSE(wire::valid_utf8("\xed\xa0\x80"));         // UTF-16 surrogate D800
  EXPECT_FALSE(wire::valid_utf8("\xf4\x90\x80\x80"));     // U+110000
  EXPECT_FALSE(wire::valid_utf8("\xe2\x82"));             // truncated at the end
  EXPECT_FALSE(wire::valid_utf8("a\xc3("));               // bad continuation
  EXPECT_FALSE(wire::valid_utf8("\xff"));
}

TEST(WireWriter, SizesMatchWhatIsWritten) {
  for (uint64_t v : {uint64_t{0}, uint64_t{127}, uint64_t{128}, uint64_t{16383}, uint64_t{16384},
                     std::numeric_limits<uint64_t>::max()}) {
    std::string expected;
    put_varint(expected, v);
    EXPECT_EQ(wire::varint_size(v), expected.size()) << v;
  }
  EXPECT_EQ(wire::tag_size(15), 1u);
  EXPECT_EQ(wire::tag_size(16), 2u);
  EXPECT_EQ(wire::len_field_size(1, 200), 1u + 2u + 200u);
}

TEST(WireWriter, OutputDecodesIndependently) {
  const std::string payload(150, 'z');  // needs a two-byte length
  const size_t total = wire::tag_size(1) + wire::varint_size(300) + wire::len_field_size(20, payload.size()) +
                       wire::len_field_size(3, 0);
  std::string out(total, '\0');
  wire::Writer w(reinterpret_cast<uint8_t*>(out.data()));
  w.tag(1, wire::VARINT);
  w.varint(300);
  w.string(20, payload);
  w.string(3, "");
  ASSERT_EQ(w.pos(), reinterpret_cast<uint8_t*>(out.data()) + total);

  std::vector<Field> fields;
  ASSERT_TRUE(decode(out, &fields));
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[0].number, 1u);
  EXPECT_EQ(fields[0].scalar, 300u);
  EXPECT_EQ(fields[1].number, 20u);
  EXPECT_EQ(fields[1].bytes, payload);
  EXPECT_EQ(fields[2].number, 3u);
  EXPECT_EQ(fields[2].bytes, "");
}

}  // namespace
}  // namespace ovfast

// KServe v2 ModelInferRequest parsing and ModelInferResponse encoding
// (ovfast/codec/kserve.hpp). Requests are built by hand with the test's own
// wire writer; responses are read back with the test's own decoder.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "codec_helpers.hpp"
#include "ovfast/codec/kserve.hpp"

namespace ovfast {
namespace {

using namespace testkit;

// ModelInferRequest / InferInputTensor / InferTensorContents field numbers.
enum : uint32_t { kModelName = 1, kModelVersion = 2, kId = 3, kParameters = 4, kInputs = 5, kOutputs = 6, kRaw = 7 };
enum : uint32_t { kInName = 1, kInDatatype = 2, kInShape = 3, kInContents = 5 };
enum : uint32_t { kBool = 1, kInt = 2, kInt64 = 3, kUint = 4, kUint64 = 5, kFp32 = 6, kFp64 = 7, kBytes = 8 };

Msg input(const std::string& name, const std::string& datatype, const std::vector<uint64_t>& shape) {
  return Msg().bytes(kInName, name).bytes(kInDatatype, datatype).packed_varints(kInShape, shape);
}

Status parse(const Msg& m, InferJob* job) { return parse_kserve_request(m.data(), m.size(), job); }
Status parse_status(const Msg& m) {
  InferJob job;
  return parse(m, &job);
}

bool points_into(const InputTensor& in, const Msg& m) {
  return in.data >= m.data() && in.data + in.size <= m.data() + m.size();
}

TEST(KServeParse, RawContentsAreViewedInPlace) {
  const std::vector<float> a = {1.5f, -2.f, 3.f, 4.f, 5.f, 6.f};
  const std::vector<int64_t> b = {7, -8};
  const std::string a_bytes(reinterpret_cast<const char*>(a.data()), a.size() * 4);
  const std::string b_bytes(reinterpret_cast<const char*>(b.data()), b.size() * 8);
  Msg m;
  m.bytes(kModelName, "resnet").bytes(kModelVersion, "3").bytes(kId, "req-1")
      .msg(kInputs, input("a", "FP32", {2, 3}))
      .msg(kInputs, input("b", "INT64", {2}))
      .msg(kOutputs, Msg().bytes(1, "prob"))
      .bytes(kRaw, a_bytes)
      .bytes(kRaw, b_bytes);
  InferJob job;
  ASSERT_TRUE(parse(m, &job).is_ok());
  EXPECT_EQ(job.model_name, "resnet");
  EXPECT_EQ(job.model_version, "3");
  EXPECT_EQ(job.id, "req-1");
  EXPECT_EQ(job.requested_outputs, std::vector<std::string>{"prob"});
  ASSERT_EQ(job.inputs.size(), 2u);
  const InputTensor& in_a = job.inputs[0];
  EXPECT_EQ(in_a.name, "a");
  EXPECT_EQ(in_a.dtype, DataType::FP32);
  EXPECT_EQ(in_a.shape, (Shape{2, 3}));
  EXPECT_FALSE(in_a.has_typed_contents);
  // zero-copy: the tensor is exactly the raw_input_contents bytes of the request
  EXPECT_EQ(reinterpret_cast<const char*>(in_a.data), m.str().data() + m.str().find(a_bytes));
  EXPECT_EQ(in_a.size, a_bytes.size());
  EXPECT_TRUE(in_a.owned.empty());
  EXPECT_EQ(values_of<float>(in_a), a);
  EXPECT_EQ(job.inputs[1].dtype, DataType::INT64);
  EXPECT_EQ(values_of<int64_t>(job.inputs[1]), b);
  EXPECT_TRUE(points_into(job.inputs[1], m));
}

TEST(KServeParse, ShapeMayBePackedOrNot) {
  Msg in = Msg().bytes(kInName, "x").bytes(kInDatatype, "UINT8").varint(kInShape, 1).packed_varints(kInShape, {2})
               .varint(kInShape, 3);
  Msg m = Msg().msg(kInputs, in).bytes(kRaw, std::string(6, '\x07'));
  InferJob job;
  ASSERT_TRUE(parse(m, &job).is_ok());
  EXPECT_EQ(job.inputs[0].shape, (Shape{1, 2, 3}));
}

TEST(KServeParse, EmptyRequestHasNoInputs) {
  InferJob job;
  ASSERT_TRUE(parse_kserve_request(nullptr, 0, &job).is_ok());
  EXPECT_TRUE(job.inputs.empty());
  EXPECT_TRUE(job.model_name.empty());
}

TEST(KServeParse, UnknownFieldsAndParametersAreSkipped) {
  Msg param = Msg().bytes(1, "key").msg(2, Msg().bytes(3, "value"));
  Msg m = Msg().varint(99, 5).msg(kParameters, param).bytes(kModelName, "m")
              .msg(kInputs, input("x", "INT32", {1}).msg(4, param).fixed32(77, 1))
              .bytes(kRaw, std::string(4, '\0')).fixed64(100, 3);
  InferJob job;
  Status st = parse(m, &job);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(job.model_name, "m");
  EXPECT_EQ(job.inputs[0].shape, (Shape{1}));
}

// --- typed contents ----------------------------------------------------------

// Parses a request whose one input `x` of `datatype` has typed `contents`. The
// requests stay alive with the fixture, as the parsed inputs may view them.
class KServeTyped : public ::testing::Test {
 protected:
  InputTensor parse_typed(const std::string& datatype, const Msg& contents) {
    requests_.push_back(Msg().msg(kInputs, input("x", datatype, {0}).msg(kInContents, contents)));
    InferJob job;
    Status st = parse(requests_.back(), &job);
    EXPECT_TRUE(st.is_ok()) << datatype << ": " << st.message();
    if (job.inputs.size() != 1) return {};
    EXPECT_TRUE(job.inputs[0].has_typed_contents);
    return std::move(job.inputs[0]);
  }
  const Msg& last_request() const { return requests_.back(); }

 private:
  std::deque<Msg> requests_;
};

TEST_F(KServeTyped, IntegersAreNarrowedPerDatatype) {
  InputTensor i8 = parse_typed("INT8", Msg().packed_varints(kInt, signed_varints({-3, 127, -128})));
  EXPECT_EQ(values_of<int8_t>(i8), (std::vector<int8_t>{-3, 127, -128}));
  EXPECT_EQ(i8.typed_count, 3u);
  InputTensor i16 = parse_typed("INT16", Msg().packed_varints(kInt, signed_varints({-300, 32767})));
  EXPECT_EQ(values_of<int16_t>(i16), (std::vector<int16_t>{-300, 32767}));
  InputTensor i32 = parse_typed("INT32", Msg().packed_varints(kInt, signed_varints({-70000, 1})));
  EXPECT_EQ(values_of<int32_t>(i32), (std::vector<int32_t>{-70000, 1}));
  InputTensor i64 = parse_typed("INT64", Msg().packed_varints(kInt64, signed_varints({-(int64_t{1} << 40), 5})));
  EXPECT_EQ(values_of<int64_t>(i64), (std::vector<int64_t>{-(int64_t{1} << 40), 5}));
  InputTensor u8 = parse_typed("UINT8", Msg().packed_varints(kUint, {255, 0}));
  EXPECT_EQ(values_of<uint8_t>(u8), (std::vector<uint8_t>{255, 0}));
  InputTensor u16 = parse_typed("UINT16", Msg().packed_varints(kUint, {65535}));
  EXPECT_EQ(values_of<uint16_t>(u16), (std::vector<uint16_t>{65535}));
  InputTensor u32 = parse_typed("UINT32", Msg().packed_varints(kUint, {4000000000u}));
  EXPECT_EQ(values_of<uint32_t>(u32), (std::vector<uint32_t>{4000000000u}));
  const uint64_t big = std::numeric_limits<uint64_t>::max();
  InputTensor u64 = parse_typed("UINT64", Msg().packed_varints(kUint64, {big, 1}));
  EXPECT_EQ(values_of<uint64_t>(u64), (std::vector<uint64_t>{big, 1}));
}

TEST_F(KServeTyped, BoolsBecomeZeroOrOne) {
  InputTensor b = parse_typed("BOOL", Msg().varint(kBool, 1).varint(kBool, 0).varint(kBool, 7));
  EXPECT_EQ(values_of<uint8_t>(b), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(b.typed_count, 3u);
}

TEST_F(KServeTyped, OnePackedFloatRunIsViewedInPlace) {
  const std::vector<float> v = {0.5f, -1.f, 2.25f};
  InputTensor f = parse_typed("FP32", Msg().packed_f32(kFp32, v));
  EXPECT_EQ(values_of<float>(f), v);
  EXPECT_EQ(f.typed_count, 3u);
  EXPECT_TRUE(f.owned.empty());
  EXPECT_TRUE(points_into(f, last_request()));

  const std::vector<double> d = {1e300, -0.125};
  InputTensor g = parse_typed("FP64", Msg().packed_f64(kFp64, d));
  EXPECT_EQ(values_of<double>(g), d);
  EXPECT_TRUE(points_into(g, last_request()));
}

TEST_F(KServeTyped, UnpackedFloatsAreCollectedIntoOwnedStorage) {
  InputTensor f = parse_typed("FP32", Msg().f32(kFp32, 1.f).f32(kFp32, 2.f).packed_f32(kFp32, {3.f}));
  EXPECT_EQ(values_of<float>(f), (std::vector<float>{1.f, 2.f, 3.f}));
  EXPECT_FALSE(f.owned.empty());
  EXPECT_EQ(f.data, f.owned.data());
  InputTensor d = parse_typed("FP64", Msg().f64(kFp64, 4.0).f64(kFp64, -5.5));
  EXPECT_EQ(values_of<double>(d), (std::vector<double>{4.0, -5.5}));
}

TEST_F(KServeTyped, BytesContentsAreLocatedNotCopied) {
  InputTensor s = parse_typed("BYTES", Msg().bytes(kBytes, "ab").bytes(kBytes, "").bytes(kBytes, std::string("\0\xff", 2)));
  EXPECT_EQ(elements_of(s.bytes), (std::vector<std::string>{"ab", "", std::string("\0\xff", 2)}));
  EXPECT_EQ(s.typed_count, 3u);
  EXPECT_EQ(s.bytes.payload_bytes(), 4u);
  // views of the request: the first element is the request's "ab"
  const std::vector<std::string_view> v = s.bytes.views();
  ASSERT_EQ(v.size(), 3u);
  const std::string& req = last_request().str();
  EXPECT_TRUE(v[0].data() >= req.data() && v[0].data() + 2 <= req.data() + req.size());
  EXPECT_TRUE(s.owned.empty());
}

TEST_F(KServeTyped, BytesContentsInSeveralContentsMessagesAreAllCounted) {
  // `contents` repeated on the wire merges: elements of every occurrence, in order
  Msg in = input("s", "BYTES", {2}).msg(kInContents, Msg().bytes(kBytes, "a")).msg(kInContents, Msg().bytes(kBytes, "b"));
  const Msg request = Msg().msg(kInputs, in);  // the parsed input views it
  InferJob job;
  ASSERT_TRUE(parse(request, &job).is_ok());
  EXPECT_EQ(elements_of(job.inputs[0].bytes), (std::vector<std::string>{"a", "b"}));
}


TEST_F(KServeTyped, OtherDatatypesFieldsAreIgnored) {
  // int_contents on an FP32 input: no fp32 values, so the input is empty (the count check is the servable's)
  InputTensor f = parse_typed("FP32", Msg().packed_varints(kInt, {1, 2}));
  EXPECT_EQ(f.typed_count, 0u);
  EXPECT_EQ(f.size, 0u);
}

Status parse_one_typed(const std::string& datatype, const Msg& contents) {
  Msg m = Msg().msg(kInputs, input("x", datatype, {1}).msg(kInContents, contents));
  InferJob job;
  return parse(m, &job);
}

TEST_F(KServeTyped, HalfPrecisionNeedsRawContents) {
  for (const char* dt : {"FP16", "BF16"}) {
    expect_invalid(parse_one_typed(dt, Msg().packed_varints(kUint, {1})), "can only be sent in raw_input_contents");
  }
}

TEST_F(KServeTyped, BadPackingIsInvalidArgument) {
  // not a multiple of 4 bytes
  expect_invalid(parse_one_typed("FP32", Msg().bytes(kFp32, "12345")), "invalid contents of input x");
  expect_invalid(parse_one_typed("FP64", Msg().bytes(kFp64, "1234")), "invalid contents of input x");
  // a varint cut short
  expect_invalid(parse_one_typed("INT32", Msg().bytes(kInt, "\x80")), "invalid contents of input x");
  // bytes_contents must be length-delimited
  expect_invalid(parse_one_typed("BYTES", Msg().varint(kBytes, 3)), "invalid contents of input x");
}

// --- structural errors ---------------------------------------------------------

TEST(KServeParse, RawAndTypedContentsCannotBeMixed) {
  Msg m = Msg().msg(kInputs, input("x", "INT32", {1}).msg(kInContents, Msg().packed_varints(kInt, {1})))
              .bytes(kRaw, std::string(4, '\0'));
  const Status st = parse_status(m);
  expect_invalid(st, "Passing buffers both");
  EXPECT_NE(st.message().find("input name: x"), std::string::npos);
}

TEST(KServeParse, OneRawBufferPerInput) {
  Msg m = Msg().msg(kInputs, input("x", "INT32", {1})).msg(kInputs, input("y", "INT32", {1}))
              .bytes(kRaw, std::string(4, '\0'));
  expect_invalid(parse_status(m), "raw_input_contents has 1 entries but the request has 2 inputs");
}

TEST(KServeParse, UnknownDatatypeNamesTheInput) {
  Msg m = Msg().msg(kInputs, input("x", "FP8", {1})).bytes(kRaw, "\x01");
  expect_invalid(parse_status(m), "unsupported datatype 'FP8'; input name: x");
}

TEST(KServeParse, StringIsAnAliasOfBytes) {
  std::string raw;
  raw.append("\x02\x00\x00\x00hi", 6);
  Msg m = Msg().msg(kInputs, input("s", "STRING", {1})).bytes(kRaw, raw);
  InferJob job;
  ASSERT_TRUE(parse(m, &job).is_ok());
  EXPECT_EQ(job.inputs[0].dtype, DataType::BYTES);
  EXPECT_EQ(elements_of(job.inputs[0].bytes), std::vector<std::string>{"hi"});
}

TEST(KServeParse, MalformedWireDataIsInvalidArgument) {
  const std::vector<std::string> cases = {
      std::string("\x0a", 1),                 // model_name tag, no length
      std::string("\x0a\x05" "abc", 5),        // model_name longer than the buffer
      std::string("\x08\x01", 2),             // model_name as a varint
      std::string("\x00\x01", 2),             // field number 0
      std::string("\x0b", 1),                 // a group
      std::string("\x2a\x03\x0a\x05x", 5),    // input whose name overruns the input message
      std::string("\x2a\x02\x1a\x80", 4),     // input shape: a cut varint
      std::string("\x32\x02\x0a\xff", 4),     // output name overruns
      std::string("\x3a\x01", 2),             // raw_input_contents cut
      std::string("\xf8\xff\xff\xff\x7f\x80", 6),  // an unknown varint field, cut
  };
  for (const std::string& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c));
    InferJob job;
    expect_invalid(parse_kserve_request(reinterpret_cast<const uint8_t*>(c.data()), c.size(), &job),
                   "Malformed ModelInferRequest");
  }
}

TEST(KServeParse, StringFieldsMustBeUtf8) {
  const std::vector<Msg> cases = {
      Msg().bytes(kModelName, "\xc0\x80"),
      Msg().bytes(kModelVersion, "\xff"),
      Msg().bytes(kId, "\xed\xa0\x80"),
      Msg().msg(kInputs, input("\x80", "FP32", {1})).bytes(kRaw, std::string(4, '\0')),
      Msg().msg(kInputs, input("x", "FP\xff", {1})).bytes(kRaw, std::string(4, '\0')),
      Msg().msg(kOutputs, Msg().bytes(1, "o\xe2\x82")),
  };
  for (const Msg& m : cases) {
    expect_invalid(parse_status(m), "UTF-8");
  }
}

// --- BYTES framing (more in bytes_elements_test) ------------------------------------

TEST(KServeBytes, RawBytesInputsAreCheckedWhileParsing) {
  Msg bad = Msg().msg(kInputs, input("s", "BYTES", {1})).bytes(kRaw, "\x05\x00");
  expect_invalid(parse_status(bad), "Invalid BYTES content of input s");
  // a length prefix that claims more than follows
  Msg over = Msg().msg(kInputs, input("s", "BYTES", {1})).bytes(kRaw, std::string("\x09\x00\x00\x00" "ab", 6));
  expect_invalid(parse_status(over), "element of 9 bytes at offset 0 exceeds the buffer");
}

TEST(KServeBytes, RawBytesElementsViewTheRequest) {
  const std::vector<std::string> elements = {"abc", "", std::string(300, 'q')};
  Msg m = Msg().msg(kInputs, input("s", "BYTES", {3})).bytes(kRaw, framed(elements));
  InferJob job;
  ASSERT_TRUE(parse(m, &job).is_ok());
  const BytesElements& e = job.inputs[0].bytes;
  EXPECT_EQ(e.count(), 3u);
  EXPECT_EQ(elements_of(e), elements);
  const std::string& req = m.str();
  const std::string_view big = e.views()[2];
  EXPECT_TRUE(big.data() >= req.data() && big.data() + big.size() <= req.data() + req.size());
}

// --- response encoding -------------------------------------------------------------

TEST(KServeEncode, ResponseCarriesHeaderOutputsAndRawContentsInOrder) {
  std::vector<OutputTensor> outs;
  outs.push_back(output_tensor("probs", DataType::FP32, {2, 2}));
  float* f = outs[0].tensor.data<float>();
  for (int i = 0; i < 4; ++i) f[i] = 0.25f * static_cast<float>(i);
  outs.push_back(output_tensor("labels", DataType::BYTES, {2}));
  outs[1].tensor.data<std::string>()[0] = "cat";
  outs[1].tensor.data<std::string>()[1] = "";
  outs.push_back(output_tensor("count", DataType::INT32, {}));
  *outs[2].tensor.data<int32_t>() = -7;

  const std::string resp = encode_kserve_response("m", "2", "id-9", outs);
  const auto top = decode_or_fail(resp);
  ASSERT_EQ(fields_of(top, 1).size(), 1u);
  EXPECT_EQ(fields_of(top, 1)[0].bytes, "m");
  EXPECT_EQ(fields_of(top, 2)[0].bytes, "2");
  EXPECT_EQ(fields_of(top, 3)[0].bytes, "id-9");
  const auto tensors = fields_of(top, 5);
  const auto raw = fields_of(top, 6);
  ASSERT_EQ(tensors.size(), 3u);
  ASSERT_EQ(raw.size(), 3u);

  const std::vector<std::string> names = {"probs", "labels", "count"};
  const std::vector<std::string> dtypes = {"FP32", "BYTES", "INT32"};
  const std::vector<std::vector<uint64_t>> shapes = {{2, 2}, {2}, {}};
  for (size_t i = 0; i < 3; ++i) {
    const auto t = decode_or_fail(tensors[i].bytes);
    EXPECT_EQ(fields_of(t, 1)[0].bytes, names[i]);
    EXPECT_EQ(fields_of(t, 2)[0].bytes, dtypes[i]);
    const auto shape = fields_of(t, 3);
    if (shapes[i].empty()) {
      EXPECT_TRUE(shape.empty()) << "a scalar's shape is omitted";
    } else {
      ASSERT_EQ(shape.size(), 1u);
      EXPECT_EQ(shape[0].type, 2) << "shape is packed";
      EXPECT_EQ(unpack_varints(shape[0].bytes), shapes[i]);
    }
  }
  EXPECT_EQ(raw[0].bytes, std::string(reinterpret_cast<const char*>(f), 16));
  EXPECT_EQ(raw[1].bytes, framed({"cat", ""}));
  int32_t count;
  ASSERT_EQ(raw[2].bytes.size(), 4u);
  std::memcpy(&count, raw[2].bytes.data(), 4);
  EXPECT_EQ(count, -7);
}

TEST(KServeEncode, EmptyHeaderFieldsAreOmitted) {
  const std::string resp = encode_kserve_response("", "", "", {output_tensor("x", DataType::UINT8, {0})});
  const auto top = decode_or_fail(resp);
  EXPECT_TRUE(fields_of(top, 1).empty());
  EXPECT_TRUE(fields_of(top, 2).empty());
  EXPECT_TRUE(fields_of(top, 3).empty());
  const auto raw = fields_of(top, 6);
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].bytes, "");
  EXPECT_TRUE(encode_kserve_response("", "", "", {}).empty());
}

}  // namespace
}  // namespace ovfast

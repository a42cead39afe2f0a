// TensorFlow-Serving PredictRequest parsing and PredictResponse encoding
// (ovfast/codec/tfs.hpp), with requests built and responses read by the
// test's own wire helpers.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "codec_helpers.hpp"
#include "ovfast/codec/tfs.hpp"

namespace ovfast {
namespace {

using namespace testkit;

// TensorProto fields and tensorflow.DataType values (tensor.proto, types.proto).
enum : uint32_t { kDtype = 1, kShape = 2, kContent = 4, kFloatVal = 5, kDoubleVal = 6, kIntVal = 7, kStringVal = 8,
                  kInt64Val = 10, kBoolVal = 11, kHalfVal = 13, kUint32Val = 16, kUint64Val = 17 };
enum : int { DT_FLOAT = 1, DT_DOUBLE = 2, DT_INT32 = 3, DT_UINT8 = 4, DT_INT16 = 5, DT_INT8 = 6, DT_STRING = 7,
             DT_COMPLEX64 = 8, DT_INT64 = 9, DT_BOOL = 10, DT_BFLOAT16 = 14, DT_UINT16 = 17, DT_HALF = 19,
             DT_UINT32 = 22, DT_UINT64 = 23 };

Msg shape_msg(const std::vector<int64_t>& dims) {
  Msg s;
  for (int64_t d : dims) s.msg(2, Msg().sint(1, d));
  return s;
}

Msg tensor(int dtype, const std::vector<int64_t>& dims) { return Msg().varint(kDtype, dtype).msg(kShape, shape_msg(dims)); }

// One `inputs` map entry of a PredictRequest.
Msg entry(const std::string& key, const Msg& value) { return Msg().bytes(1, key).msg(2, value); }

Msg spec_msg(const std::string& name, int64_t version) {
  return Msg().bytes(1, name).msg(2, Msg().sint(1, version)).bytes(3, "serving_default");
}

struct Parsed {
  Status status;
  TfsModelSpec spec;
  InferJob job;
};

Parsed parse(const Msg& m) {
  Parsed p;
  p.status = parse_tfs_predict_request(m.data(), m.size(), &p.spec, &p.job);
  return p;
}

TEST(TfsParse, ModelSpecAndTensorContentViewedInPlace) {
  const std::vector<float> x = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f};
  const std::string content(reinterpret_cast<const char*>(x.data()), x.size() * 4);
  Msg m = Msg().msg(1, spec_msg("m", 3))
              .msg(2, entry("a", tensor(DT_FLOAT, {2, 4}).bytes(kContent, content)))
              .bytes(3, "o");
  Parsed p = parse(m);
  ASSERT_TRUE(p.status.is_ok()) << p.status.message();
  EXPECT_TRUE(p.spec.present);
  EXPECT_EQ(p.spec.name, "m");
  EXPECT_EQ(p.job.model_name, "m");
  EXPECT_TRUE(p.spec.has_version);
  EXPECT_EQ(p.spec.version, 3);
  EXPECT_EQ(p.spec.signature_name, "serving_default");
  ASSERT_EQ(p.job.inputs.size(), 1u);
  const InputTensor& a = p.job.inputs[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.dtype, DataType::FP32);
  EXPECT_EQ(a.datatype_name, "FP32");
  EXPECT_EQ(a.shape, (Shape{2, 4}));
  EXPECT_EQ(reinterpret_cast<const char*>(a.data), m.str().data() + m.str().find(content));  // zero-copy
  EXPECT_EQ(values_of<float>(a), x);
  EXPECT_TRUE(p.job.requested_outputs.empty()) << "output_filter is ignored, as OVMS does";
}

TEST(TfsParse, MissingModelSpecAndVersion) {
  Parsed empty = parse(Msg());
  ASSERT_TRUE(empty.status.is_ok());
  EXPECT_FALSE(empty.spec.present);
  EXPECT_FALSE(empty.spec.has_version);
  EXPECT_EQ(empty.spec.version, 0);

  Parsed named = parse(Msg().msg(1, Msg().bytes(1, "x")));
  ASSERT_TRUE(named.status.is_ok());
  EXPECT_TRUE(named.spec.present);
  EXPECT_FALSE(named.spec.has_version);

  // An Int64Value holding 0 serializes as an empty message: present, value 0.
  Parsed zero = parse(Msg().msg(1, Msg().bytes(1, "x").bytes(2, "").bytes(4, "stable")));
  ASSERT_TRUE(zero.status.is_ok());
  EXPECT_TRUE(zero.spec.has_version);
  EXPECT_EQ(zero.spec.version, 0);
  EXPECT_EQ(zero.spec.version_label, "stable");
}

// Parses a request with the one input `x` = `value`. The requests stay alive
// with the fixture, as the parsed inputs may view them.
class TfsTyped : public ::testing::Test {
 protected:
  InputTensor parse_one(const Msg& value) {
    requests_.push_back(Msg().msg(2, entry("x", value)));
    Parsed p = parse(requests_.back());
    EXPECT_TRUE(p.status.is_ok()) << p.status.message();
    if (p.job.inputs.size() != 1) return {};
    return std::move(p.job.inputs[0]);
  }

 private:
  std::deque<Msg> requests_;
};

TEST_F(TfsTyped, ValueListsAreConvertedToTheDeclaredType) {
  InputTensor h = parse_one(tensor(DT_HALF, {2}).packed_varints(kHalfVal, {0x3c00, 0xc000}));
  EXPECT_EQ(h.dtype, DataType::FP16);
  EXPECT_EQ(values_of<uint16_t>(h), (std::vector<uint16_t>{0x3c00, 0xc000}));
  EXPECT_TRUE(h.has_typed_contents);
  EXPECT_EQ(h.typed_count, 2u);
  InputTensor bf = parse_one(tensor(DT_BFLOAT16, {1}).varint(kHalfVal, 0x3f80));
  EXPECT_EQ(values_of<uint16_t>(bf), (std::vector<uint16_t>{0x3f80}));
  InputTensor i8 = parse_one(tensor(DT_INT8, {2}).packed_varints(kIntVal, signed_varints({-5, 100})));
  EXPECT_EQ(values_of<int8_t>(i8), (std::vector<int8_t>{-5, 100}));
  InputTensor i16 = parse_one(tensor(DT_INT16, {1}).packed_varints(kIntVal, signed_varints({-1000})));
  EXPECT_EQ(values_of<int16_t>(i16), (std::vector<int16_t>{-1000}));
  InputTensor i32 = parse_one(tensor(DT_INT32, {2}).sint(kIntVal, -1).sint(kIntVal, 70000));
  EXPECT_EQ(values_of<int32_t>(i32), (std::vector<int32_t>{-1, 70000}));
  InputTensor u8 = parse_one(tensor(DT_UINT8, {1}).packed_varints(kIntVal, {255}));
  EXPECT_EQ(values_of<uint8_t>(u8), (std::vector<uint8_t>{255}));
  InputTensor u16 = parse_one(tensor(DT_UINT16, {2}).packed_varints(kIntVal, {1, 65535}));
  EXPECT_EQ(values_of<uint16_t>(u16), (std::vector<uint16_t>{1, 65535}));
  InputTensor i64 = parse_one(tensor(DT_INT64, {1}).packed_varints(kInt64Val, signed_varints({-(int64_t{1} << 50)})));
  EXPECT_EQ(values_of<int64_t>(i64), (std::vector<int64_t>{-(int64_t{1} << 50)}));
  InputTensor u32 = parse_one(tensor(DT_UINT32, {1}).packed_varints(kUint32Val, {4000000000u}));
  EXPECT_EQ(values_of<uint32_t>(u32), (std::vector<uint32_t>{4000000000u}));
  InputTensor u64 = parse_one(tensor(DT_UINT64, {1}).packed_varints(kUint64Val, {~uint64_t{0}}));
  EXPECT_EQ(values_of<uint64_t>(u64), (std::vector<uint64_t>{~uint64_t{0}}));
  InputTensor b = parse_one(tensor(DT_BOOL, {3}).packed_varints(kBoolVal, {0, 1, 2}));
  EXPECT_EQ(values_of<uint8_t>(b), (std::vector<uint8_t>{0, 1, 1}));
  InputTensor f = parse_one(tensor(DT_FLOAT, {3}).f32(kFloatVal, 1.5f).packed_f32(kFloatVal, {2.5f, -3.f}));
  EXPECT_EQ(values_of<float>(f), (std::vector<float>{1.5f, 2.5f, -3.f}));
  EXPECT_EQ(f.data, f.owned.data()) << "typed values live in owned storage";
  InputTensor d = parse_one(tensor(DT_DOUBLE, {2}).packed_f64(kDoubleVal, {0.5, 1e-300}));
  EXPECT_EQ(values_of<double>(d), (std::vector<double>{0.5, 1e-300}));
}

TEST_F(TfsTyped, TensorContentWinsOverValueLists) {
  const std::string content(8, '\x01');
  InputTensor t = parse_one(tensor(DT_INT32, {2}).packed_varints(kIntVal, {5, 6}).bytes(kContent, content));
  EXPECT_FALSE(t.has_typed_contents);
  EXPECT_EQ(values_of<int32_t>(t), (std::vector<int32_t>{0x01010101, 0x01010101}));
}

TEST_F(TfsTyped, LastTensorContentWins) {
  InputTensor t = parse_one(tensor(DT_UINT8, {2}).bytes(kContent, "ab").bytes(kContent, "cd"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.size), "cd");
}

TEST_F(TfsTyped, StringValIsLocatedNotCopied) {
  InputTensor s = parse_one(tensor(DT_STRING, {3}).bytes(kStringVal, "ab").bytes(kStringVal, "")
                                .bytes(kStringVal, std::string("\xff\0", 2)));
  EXPECT_EQ(s.dtype, DataType::BYTES);
  EXPECT_EQ(elements_of(s.bytes), (std::vector<std::string>{"ab", "", std::string("\xff\0", 2)}));
  EXPECT_EQ(s.typed_count, 3u);
  EXPECT_EQ(s.data, nullptr);
  EXPECT_TRUE(s.owned.empty());
}

TEST_F(TfsTyped, StringValOfAnotherWireTypeIsMalformed) {
  // string_val (8) sent as a varint: not a string
  Parsed p = parse(Msg().msg(2, entry("x", tensor(DT_STRING, {1}).varint(kStringVal, 7))));
  expect_invalid(p.status, "string_val of input x");
}

TEST_F(TfsTyped, UnknownDtypeIsLeftForValidation) {
  InputTensor c = parse_one(tensor(DT_COMPLEX64, {1}).bytes(kContent, std::string(8, '\0')));
  EXPECT_EQ(c.dtype, DataType::INVALID);
  EXPECT_EQ(c.datatype_name, "UNDEFINED");
}

TEST_F(TfsTyped, ShapeSkipsDimNamesAndUnknownRank) {
  Msg shape = Msg().msg(2, Msg().sint(1, 4).bytes(2, "batch")).msg(2, Msg()).varint(3, 0).msg(2, Msg().sint(1, -1));
  InputTensor t = parse_one(Msg().varint(kDtype, DT_FLOAT).msg(kShape, shape));
  EXPECT_EQ(t.shape, (Shape{4, 0, -1}));
}

TEST(TfsParse, RepeatedMapKeyReplacesTheEarlierEntryInPlace) {
  Msg m = Msg().msg(2, entry("a", tensor(DT_UINT8, {1}).bytes(kContent, "1")))
              .msg(2, entry("b", tensor(DT_UINT8, {1}).bytes(kContent, "2")))
              .msg(2, entry("a", tensor(DT_UINT8, {2}).bytes(kContent, "33")));
  Parsed p = parse(m);
  ASSERT_TRUE(p.status.is_ok());
  ASSERT_EQ(p.job.inputs.size(), 2u);
  EXPECT_EQ(p.job.inputs[0].name, "a");
  EXPECT_EQ(p.job.inputs[0].shape, (Shape{2}));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.job.inputs[0].data), p.job.inputs[0].size), "33");
  EXPECT_EQ(p.job.inputs[1].name, "b");
}

TEST(TfsParse, MalformedWireDataIsInvalidArgument) {
  const std::vector<std::string> cases = {
      std::string("\x0a", 1),                          // model_spec tag, no length
      std::string("\x12\x05" "abc", 5),                // inputs entry longer than the buffer
      std::string("\x0a\x02\x12\xff", 4),              // model_spec.version overruns
      std::string("\x07", 1),                          // a group end
      std::string("\x12\x03\x12\x01\xff", 5),          // map value: a tensor with a dangling tag
      std::string("\x12\x04\x12\x02\x22\x05", 6),      // tensor_content overruns the tensor
      std::string("\x12\x06\x12\x04\x12\x02\x12\x09", 8),  // a shape dim overruns
      std::string("\x12\x04\x12\x02\x2a\x03", 6),      // float_val packed run overruns
  };
  for (const std::string& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c));
    TfsModelSpec spec;
    InferJob job;
    expect_invalid(parse_tfs_predict_request(reinterpret_cast<const uint8_t*>(c.data()), c.size(), &spec, &job),
                   "Malformed PredictRequest");
  }
}

TEST_F(TfsTyped, BadPackingIsInvalidArgument) {
  Parsed p = parse(Msg().msg(2, entry("x", tensor(DT_FLOAT, {1}).bytes(kFloatVal, "123"))));
  expect_invalid(p.status, "invalid typed values of input x");
  p = parse(Msg().msg(2, entry("s", tensor(DT_STRING, {1}).varint(kStringVal, 1))));
  expect_invalid(p.status, "string_val of input s");
}

TEST(TfsParse, StringFieldsMustBeUtf8) {
  for (const Msg& m : {Msg().msg(1, Msg().bytes(1, "\x80")), Msg().msg(1, Msg().bytes(3, "\xc0\x80")),
                       Msg().msg(1, Msg().bytes(4, "\xff")),
                       Msg().msg(2, entry("\xed\xa0\x80", tensor(DT_UINT8, {1}).bytes(kContent, "1")))}) {
    expect_invalid(parse(m).status, "UTF-8");
  }
}

TEST(TfsDtype, EveryTableEntryMapsBackFromItsTfEnum) {
  for (int i = 1; i <= static_cast<int>(DataType::BYTES); ++i) {
    const DataTypeInfo& info = datatype_info(static_cast<DataType>(i));
    EXPECT_EQ(datatype_from_tf_enum(info.tf_enum), info.dtype) << info.kserve_name;
  }
  EXPECT_EQ(datatype_from_tf_enum(DT_HALF), DataType::FP16);
  EXPECT_EQ(datatype_from_tf_enum(DT_STRING), DataType::BYTES);
  EXPECT_EQ(datatype_from_tf_enum(0), DataType::INVALID);
  EXPECT_EQ(datatype_from_tf_enum(DT_COMPLEX64), DataType::INVALID);
  EXPECT_EQ(datatype_from_tf_enum(-1), DataType::INVALID);
}

// --- response encoding ---------------------------------------------------------

std::vector<int64_t> dims_of(const std::vector<Field>& tensor_fields) {
  std::vector<int64_t> dims;
  const auto shapes = fields_of(tensor_fields, kShape);
  EXPECT_EQ(shapes.size(), 1u);
  if (shapes.empty()) return dims;
  for (const Field& dim : fields_of(decode_or_fail(shapes[0].bytes), 2)) {
    const auto size = fields_of(decode_or_fail(dim.bytes), 1);
    dims.push_back(size.empty() ? 0 : static_cast<int64_t>(size[0].scalar));  // proto3: 0 is omitted
  }
  return dims;
}

TEST(TfsEncode, OutputsAndModelSpecRoundTrip) {
  std::vector<OutputTensor> outs;
  outs.push_back(output_tensor("a", DataType::FP16, {2, 3}));
  auto* h = static_cast<uint16_t*>(outs[0].tensor.data());
  for (uint16_t i = 0; i < 6; ++i) h[i] = static_cast<uint16_t>(0x3c00 + i);
  outs.push_back(output_tensor("s", DataType::BYTES, {2}));
  outs[1].tensor.data<std::string>()[0] = "x";
  outs[1].tensor.data<std::string>()[1] = std::string("\xff\0", 2);
  outs.push_back(output_tensor("z", DataType::INT64, {0, 4}));

  const auto top = decode_or_fail(encode_tfs_response("m", "7", outs));
  const auto entries = fields_of(top, 1);
  ASSERT_EQ(entries.size(), 3u);
  std::vector<std::vector<Field>> tensors;
  const std::vector<std::string> names = {"a", "s", "z"};
  for (size_t i = 0; i < 3; ++i) {
    const auto e = decode_or_fail(entries[i].bytes);
    EXPECT_EQ(fields_of(e, 1)[0].bytes, names[i]);
    tensors.push_back(decode_or_fail(fields_of(e, 2)[0].bytes));
  }
  EXPECT_EQ(fields_of(tensors[0], kDtype)[0].scalar, static_cast<uint64_t>(DT_HALF));
  EXPECT_EQ(dims_of(tensors[0]), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(fields_of(tensors[0], kContent)[0].bytes, std::string(reinterpret_cast<const char*>(h), 12));

  EXPECT_EQ(fields_of(tensors[1], kDtype)[0].scalar, static_cast<uint64_t>(DT_STRING));
  const auto strs = fields_of(tensors[1], kStringVal);
  ASSERT_EQ(strs.size(), 2u);
  EXPECT_EQ(strs[0].bytes, "x");
  EXPECT_EQ(strs[1].bytes, std::string("\xff\0", 2));
  EXPECT_TRUE(fields_of(tensors[1], kContent).empty());

  EXPECT_EQ(dims_of(tensors[2]), (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(fields_of(tensors[2], kContent).empty()) << "empty content is omitted";

  const auto spec = fields_of(top, 2);
  ASSERT_EQ(spec.size(), 1u);
  const auto spec_fields = decode_or_fail(spec[0].bytes);
  EXPECT_EQ(fields_of(spec_fields, 1)[0].bytes, "m");
  const auto version = fields_of(spec_fields, 2);
  ASSERT_EQ(version.size(), 1u);
  EXPECT_EQ(fields_of(decode_or_fail(version[0].bytes), 1)[0].scalar, 7u);
}

TEST(TfsEncode, VersionIsWrittenOnlyWhenAPositiveInteger) {
  for (const char* v : {"", "0", "-3", "abc", "7x"}) {
    const auto top = decode_or_fail(encode_tfs_response("m", v, {}));
    const auto spec = fields_of(top, 2);
    ASSERT_EQ(spec.size(), 1u) << v;
    EXPECT_TRUE(fields_of(decode_or_fail(spec[0].bytes), 2).empty()) << v;
  }
  EXPECT_TRUE(encode_tfs_response("", "", {}).empty()) << "no name, no version: no model_spec";
}

}  // namespace
}  // namespace ovfast

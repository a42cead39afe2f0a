// The sequence fields of the codecs: KServe's sequence_id / sequence_start /
// sequence_end request parameters (Triton's sequence API) and the response
// parameter sequence_id; TFS's special inputs (tensor_shape present or not) and
// the sequence_id output in uint64_val. Requests are built with the test's own
// wire writer, responses read back with its own decoder.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "codec_helpers.hpp"
#include "ovfast/codec/kserve.hpp"
#include "ovfast/codec/tfs.hpp"

namespace ovfast {
namespace {

using namespace testkit;

enum : uint32_t { kParameters = 4 };                         // ModelInferRequest
enum : uint32_t { kRespParameters = 4, kRespOutputs = 5 };   // ModelInferResponse
enum : uint32_t { kBoolParam = 1, kInt64Param = 2, kStringParam = 3, kDoubleParam = 4, kUint64Param = 5 };

Msg param(const std::string& key, const Msg& value) { return Msg().bytes(1, key).msg(2, value); }

Status parse(const Msg& m, InferJob* job) { return parse_kserve_request(m.data(), m.size(), job); }

OutputTensor id_output(uint64_t id) {
  OutputTensor o = output_tensor("sequence_id", DataType::UINT64, {1});
  o.tensor.data<uint64_t>()[0] = id;
  o.sequence_id = true;
  return o;
}

TEST(SequenceKServe, TritonSequenceParametersAreRead) {
  Msg m = Msg().msg(kParameters, param("sequence_id", Msg().varint(kInt64Param, 17)))
              .msg(kParameters, param("sequence_start", Msg().varint(kBoolParam, 1)))
              .msg(kParameters, param("priority", Msg().varint(kInt64Param, 3)));
  InferJob job;
  ASSERT_TRUE(parse(m, &job).is_ok());
  EXPECT_TRUE(job.sequence.given);
  EXPECT_EQ(job.sequence.id, 17u);
  EXPECT_TRUE(job.sequence.start);
  EXPECT_FALSE(job.sequence.end);

  InferJob str;
  Msg s = Msg().msg(kParameters, param("sequence_id", Msg().bytes(kStringParam, "abc")))
              .msg(kParameters, param("sequence_end", Msg().varint(kBoolParam, 1)));
  ASSERT_TRUE(parse(s, &str).is_ok());
  EXPECT_EQ(str.sequence.id_string, "abc");
  EXPECT_TRUE(str.sequence.end);

  InferJob big;
  ASSERT_TRUE(parse(Msg().msg(kParameters, param("sequence_id", Msg().varint(kUint64Param, ~0ull))), &big).is_ok());
  EXPECT_EQ(big.sequence.id, ~0ull);

  InferJob none;
  ASSERT_TRUE(parse(Msg().bytes(1, "m"), &none).is_ok());
  EXPECT_FALSE(none.sequence.given);
}

TEST(SequenceKServe, ParametersOfTheWrongTypeAreRefused) {
  InferJob job;
  Status st = parse(Msg().msg(kParameters, param("sequence_id", Msg().f64(kDoubleParam, 1.0))), &job);
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.message().find("sequence_id"), std::string::npos) << st.message();
  st = parse(Msg().msg(kParameters, param("sequence_start", Msg().varint(kInt64Param, 1))), &job);
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.message().find("sequence_start"), std::string::npos) << st.message();
  st = parse(Msg().msg(kParameters, param("sequence_id", Msg().sint(kInt64Param, -1))), &job);
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT);
  // broken wire data inside a parameter is a malformed request
  st = parse(Msg().msg(kParameters, Msg().bytes(1, "sequence_id").raw("\x12\x05\x10")), &job);
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT);
}

TEST(SequenceKServe, ResponseCarriesTheIdAsAParameter) {
  std::vector<OutputTensor> outs;
  outs.push_back(output_tensor("output", DataType::FP32, {1, 1}));
  outs.push_back(id_output(123));
  std::vector<Field> fields;
  ASSERT_TRUE(decode(encode_kserve_response("m", "1", "", outs), &fields));
  ASSERT_EQ(fields_of(fields, kRespOutputs).size(), 1u);  // the id is no output
  std::vector<Field> params = fields_of(fields, kRespParameters);
  ASSERT_EQ(params.size(), 1u);
  std::vector<Field> entry;
  ASSERT_TRUE(decode(params[0].bytes, &entry));
  EXPECT_EQ(fields_of(entry, 1).at(0).bytes, "sequence_id");
  std::vector<Field> value;
  ASSERT_TRUE(decode(fields_of(entry, 2).at(0).bytes, &value));
  ASSERT_EQ(value.size(), 1u);
  EXPECT_EQ(value[0].number, kInt64Param);
  EXPECT_EQ(value[0].scalar, 123u);

  OutputTensor named = output_tensor("sequence_id", DataType::BYTES, {1});
  named.tensor.data<std::string>()[0] = "call-7";
  named.sequence_id = true;
  std::vector<Field> f2, e2, v2;
  ASSERT_TRUE(decode(encode_kserve_response("m", "1", "", {named}), &f2));
  ASSERT_TRUE(decode(fields_of(f2, kRespParameters).at(0).bytes, &e2));
  ASSERT_TRUE(decode(fields_of(e2, 2).at(0).bytes, &v2));
  EXPECT_EQ(v2.at(0).number, kStringParam);
  EXPECT_EQ(v2.at(0).bytes, "call-7");
}

// TensorProto / PredictRequest / PredictResponse field numbers.
enum : uint32_t { kDtype = 1, kShape = 2, kContent = 4, kUint64Val = 17 };
constexpr int kDtUint64 = 23;

TEST(SequenceTfs, SpecialInputsKeepTheirTypedValueAndWhetherAShapeCame) {
  Msg with_shape = Msg().varint(kDtype, kDtUint64).msg(kShape, Msg().msg(2, Msg().varint(1, 1)))
                       .packed_varints(kUint64Val, {42});
  Msg without = Msg().varint(kDtype, kDtUint64).packed_varints(kUint64Val, {42});
  Msg m = Msg().msg(2, Msg().bytes(1, "sequence_id").msg(2, with_shape))
              .msg(2, Msg().bytes(1, "sequence_control_input").msg(2, without));
  InferJob job;
  TfsModelSpec spec;
  ASSERT_TRUE(parse_tfs_predict_request(m.data(), m.size(), &spec, &job).is_ok());
  ASSERT_EQ(job.inputs.size(), 2u);
  EXPECT_TRUE(job.inputs[0].has_shape);
  EXPECT_TRUE(job.inputs[0].has_typed_contents);
  EXPECT_EQ(values_of<uint64_t>(job.inputs[0]), std::vector<uint64_t>{42});
  EXPECT_FALSE(job.inputs[1].has_shape);
}

TEST(SequenceTfs, ResponseSendsTheIdInUint64Val) {
  std::vector<OutputTensor> outs;
  outs.push_back(output_tensor("output", DataType::FP32, {1, 1}));
  outs.push_back(id_output((1ull << 40) + 5));
  std::vector<Field> fields;
  ASSERT_TRUE(decode(encode_tfs_response("m", "1", outs), &fields));
  bool seen = false;
  for (const Field& entry : fields_of(fields, 1)) {
    std::vector<Field> kv, tensor;
    ASSERT_TRUE(decode(entry.bytes, &kv));
    if (fields_of(kv, 1).at(0).bytes != "sequence_id") continue;
    seen = true;
    ASSERT_TRUE(decode(fields_of(kv, 2).at(0).bytes, &tensor));
    EXPECT_EQ(fields_of(tensor, kDtype).at(0).scalar, static_cast<uint64_t>(kDtUint64));
    EXPECT_TRUE(fields_of(tensor, kContent).empty());
    EXPECT_EQ(unpack_varints(fields_of(tensor, kUint64Val).at(0).bytes), std::vector<uint64_t>{(1ull << 40) + 5});
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace ovfast

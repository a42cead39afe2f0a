// TensorFlow-Serving PredictRequest / PredictResponse wire codec.
// Pure functions, any thread, no locking.
//
// Only the fields the OVMS TFS frontend acts on are interpreted; everything
// else is skipped. Parsing never copies `tensor_content`: the resulting
// InputTensor views the request buffer. Typed value lists (`half_val`,
// `int_val`, `float_val`, ...) and `string_val` are converted into owned
// storage (InputTensor::owned / ::strings).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ovfast/codec/limits.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

struct TfsModelSpec {
  std::string name;
  int64_t version = 0;         // 0 when absent (= default version)
  bool has_version = false;    // an Int64Value was present (its value may still be 0)
  std::string version_label;   // parsed, unused (as OVMS)
  std::string signature_name;  // parsed, unused (as OVMS)
  bool present = false;        // model_spec field seen at all
};

// TF DataType enum value -> ovfast DataType; INVALID for types no model input
// can have (complex, resource, variant, quantized ...).
DataType datatype_from_tf_enum(int tf_enum);

// Parses a serialized tensorflow.serving.PredictRequest.
//
// Ownership: on success `job->inputs` may point into `buf` (tensor_content is
// wrapped, not copied), so `buf` must outlive `job`. `job->inputs` keeps the
// order of first appearance of each map key; a repeated key replaces the
// earlier entry (protobuf map semantics). Malformed wire data yields
// INVALID_ARGUMENT, never a crash. Type/shape/size checks against the model
// are left to Servable::validate (OVMS order and messages). The entry count
// and each shape's rank are checked against `limits` before they are allocated.
Status parse_tfs_predict_request(const uint8_t* buf, size_t len, TfsModelSpec* spec, InferJob* job,
                                 const DecodeLimits& limits = decode_limits());

// Serializes a PredictResponse in one allocation: model_spec{name, version}
// and one `outputs` map entry per output (tensor_content; BYTES as
// string_val; a sequence id (OutputTensor::sequence_id) in uint64_val). `version` is written as Int64Value when it parses as a
// positive integer.
std::string encode_tfs_response(const std::string& model_name, const std::string& version,
                                const std::vector<OutputTensor>& outputs);

}  // namespace ovfast

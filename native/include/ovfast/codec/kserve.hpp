// KServe v2 ModelInferRequest / ModelInferResponse wire codec.
// Pure functions, any thread, no locking. Parsed inputs view the caller's
// buffer (the caller keeps it alive until the job completes).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "ovfast/codec/limits.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

// Parses a serialized inference.ModelInferRequest. On success `job` holds
// views into `buf` (raw_input_contents, packed fp32/fp64 contents and BYTES
// elements are not copied): `buf` must outlive `job`. Typed contents are interpreted per the
// declared datatype and validated (value counts, raw/typed mixing).
// Counts of inputs, outputs, shape dimensions and parameters are checked
// against `limits` before anything is allocated for them (INVALID_ARGUMENT
// naming the limit's flag when one is exceeded); what the parse allocates
// is then proportional to the request's bytes.
Status parse_kserve_request(const uint8_t* buf, size_t len, InferJob* job,
                            const DecodeLimits& limits = decode_limits());

// Serializes a ModelInferResponse with raw_output_contents into one buffer.
std::string encode_kserve_response(const std::string& model_name, const std::string& model_version,
                                   const std::string& id, const std::vector<OutputTensor>& outputs);

}  // namespace ovfast

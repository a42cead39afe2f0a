// The KServe v2 sequence parameters (Triton's sequence API): `sequence_id`
// (int64 / uint64 or string), `sequence_start`, `sequence_end` (bool) in a
// ModelInferRequest, and `sequence_id` in the ModelInferResponse parameters.
// Internal to the codec (kserve.cpp). Pure functions, any thread.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ovfast/codec/wire.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

// One `parameters` map entry (key = 1, InferParameter value = 2) of a
// ModelInferRequest: the sequence keys fill `seq`, other keys are ignored.
// A sequence key with a value of the wrong type is INVALID_ARGUMENT; broken
// wire data sets *malformed.
Status parse_sequence_parameter(const uint8_t* d, size_t n, SequenceRequest* seq, bool* malformed);

// The response's `parameters` map entry (field 4) for a sequence id output:
// its encoded size, and writing it.
size_t sequence_parameter_size(const OutputTensor& id);
void write_sequence_parameter(wire::Writer& w, const OutputTensor& id);

}  // namespace ovfast

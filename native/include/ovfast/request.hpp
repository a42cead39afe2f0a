// Transport-independent inference request/response data.
//
// Ownership: an InputTensor either views memory it does not own (`data`
// points into a request buffer; whoever built the request keeps that buffer
// alive until the job completes, see InferJob::keepalive) or owns its bytes in
// `owned` / `strings` (typed protobuf contents, converted JSON).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <openvino/runtime/tensor.hpp>

#include "ovfast/dtype.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

using Shape = std::vector<int64_t>;

struct InputTensor {
  std::string name;
  DataType dtype = DataType::INVALID;
  std::string datatype_name;   // as received, for error messages
  Shape shape;
  const uint8_t* data = nullptr;  // fixed-size types: row-major little-endian elements
  size_t size = 0;                // bytes at `data`
  std::vector<uint8_t> owned;     // backing store when the data had to be converted
  std::vector<std::string> strings;  // BYTES elements (decoded)
  bool has_typed_contents = false;
  size_t typed_count = 0;         // element count found in typed contents
};

// Where results go once inference finishes.
enum class ResponseMode : int {
  KSERVE_PROTO = 0,  // serialize a ModelInferResponse into Completion::payload
  TENSORS = 1,       // hand back owned output tensors (REST, TFS, tests)
  TFS_PROTO = 2,     // serialize a tensorflow.serving.PredictResponse into Completion::payload
};

struct InferJob {
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<InputTensor> inputs;
  std::vector<std::string> requested_outputs;  // empty = all, in model order
  ResponseMode mode = ResponseMode::KSERVE_PROTO;
  // Opaque references owned by the binding layer (Python objects). The core
  // never dereferences them; they travel to the Completion unchanged and are
  // released by whoever drains it (with the GIL held).
  void* keepalive = nullptr;
  void* context = nullptr;
  // Metrics (metrics.hpp): the request route to count this job under
  // (kNoRoute = -1: not counted) and when the server received the request
  // (steady clock, ns; 0 = stamp at submit).
  int metrics_route = -1;
  uint64_t received_ns = 0;
};

struct OutputTensor {
  std::string name;
  DataType dtype = DataType::INVALID;
  Shape shape;
  ov::Tensor tensor;  // owned copy (never an infer request's own buffer)
};

struct Completion {
  void* keepalive = nullptr;
  void* context = nullptr;
  Status status;
  std::string payload;               // KSERVE_PROTO
  std::vector<OutputTensor> outputs;  // TENSORS
  uint64_t infer_us = 0;             // time inside OpenVINO
  uint64_t wait_us = 0;              // time waiting for a free infer request
};

std::string shape_to_string(const Shape& s);

}  // namespace ovfast

// Transport-independent inference request/response data.
//
// Ownership: an InputTensor either views memory it does not own (`data`
// points into a request buffer; whoever built the request keeps that buffer
// alive until the job completes, see InferJob::keepalive) or owns its bytes in
// `owned` (typed protobuf contents, decoded images). BYTES elements are only
// located (`bytes`, views of the request) until a validated job is bound.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <openvino/runtime/tensor.hpp>

#include "ovfast/bytes_elements.hpp"
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
  BytesElements bytes;            // BYTES elements, where they are in the request (not copied)
  bool has_typed_contents = false;
  size_t typed_count = 0;         // element count found in typed contents
  bool has_shape = true;          // TFS: the TensorProto carried a tensor_shape (special inputs need one)
};

// What a request asks of a sequence (stateful models). KServe carries it in
// the request parameters (Triton: sequence_id, sequence_start, sequence_end);
// TFS in the special inputs sequence_id / sequence_control_input, which the
// sequence scheduler takes out of the inputs.
struct SequenceRequest {
  bool given = false;       // any sequence parameter was present (KServe)
  uint64_t id = 0;          // 0: none (a start then gets an id from the server)
  std::string id_string;    // KServe string id; non-empty: used instead of `id`
  bool start = false;
  bool end = false;
};

class ResultSink;  // exec/result_sink.hpp: where a job's outcome goes

struct InferJob {
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<InputTensor> inputs;
  std::vector<std::string> requested_outputs;  // empty = all, in model order
  // Where the outcome goes (KServe / TFS encoder, Python tensors, ...). Required.
  std::shared_ptr<ResultSink> sink;
  // Opaque references owned by the binding layer (Python objects). The core
  // never dereferences them; they travel to the Completion unchanged and are
  // released by whoever drains it (with the GIL held).
  void* keepalive = nullptr;
  void* context = nullptr;
  // Metrics (metrics.hpp): the request route to count this job under in the
  // Prometheus families (kNoRoute = -1: not counted there; Triton statistics
  // count every job) and when the server received the request (now_ns(); 0 =
  // stamp at submit).
  int metrics_route = -1;
  uint64_t received_ns = 0;
  // When the job stops being wanted if it has not started yet: now_ns() past
  // deadline_ns (0 = no deadline), or *cancelled set by the transport (the
  // client went away). Whoever sets `cancelled` keeps the flag alive until the
  // job's sink has it. A scheduler drops such a job instead of running it.
  uint64_t deadline_ns = 0;
  const std::atomic<bool>* cancelled = nullptr;
  // Why the job is no longer wanted at `now` (DEADLINE_EXCEEDED / CANCELLED), or OK.
  Status unwanted(uint64_t now) const;
  SequenceRequest sequence;
};

struct OutputTensor {
  std::string name;
  DataType dtype = DataType::INVALID;
  Shape shape;
  // May view an infer request's output buffer while a ResultSink runs; a sink
  // that keeps outputs beyond deliver() copies them.
  ov::Tensor tensor;
  // The response's sequence id (stateful models; UINT64 or BYTES, shape [1]):
  // TFS sends it as output `sequence_id` in uint64_val (OVMS), KServe as the
  // response parameter `sequence_id`.
  bool sequence_id = false;
};

struct Completion {
  void* keepalive = nullptr;
  void* context = nullptr;
  Status status;
  std::string payload;               // a serialized response (KServe / TFS sinks)
  std::vector<OutputTensor> outputs;  // owned tensors (tensor sink)
  uint64_t infer_us = 0;             // time inside OpenVINO
  uint64_t wait_us = 0;              // time waiting for a free infer request
};

std::string shape_to_string(const Shape& s);
// Steady-clock nanoseconds (the clock of InferJob::received_ns).
uint64_t now_ns();

}  // namespace ovfast

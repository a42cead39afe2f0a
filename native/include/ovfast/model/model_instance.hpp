// ModelInstance: one model version made ready to run — read, renamed
// (mapping_config.json), reshaped, given its pre-processing, compiled — plus
// its metadata and the request checks that depend only on it.
//
// Ownership: owns the ov::CompiledModel (absent in echo mode, where only the
// model's signature is read). Infer requests are the InferPool's.
// Threading: immutable after create(); every const method may run on any
// thread concurrently, without locks.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <openvino/runtime/core.hpp>

#include "ovfast/batching.hpp"
#include "ovfast/dtype.hpp"
#include "ovfast/model/shape.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

struct TensorInfo {
  std::string name;
  DataType dtype;
  ov::PartialShape shape;
};

// Every knob of one model version, validated once by the control plane
// (src/ovfast/config) and handed over as this one struct.
struct ModelOptions {
  std::string model_path;
  std::string device = "CPU";
  std::map<std::string, std::string> plugin_config;  // passed to compile_model as is
  int nireq = 0;                                       // 0 = ov::optimal_number_of_infer_requests
  std::map<std::string, ShapeSpec> shapes;             // input name ("" = the only input) -> shape
  std::optional<DimRange> batch_size;                  // dim 0 of every input; `shapes` wins over it
  // Image inputs (codec/image.hpp). layouts: input/output name ("" = the only input) ->
  // "NHWC:NCHW" (what clients send : what the model has) or "NHWC" (declares the layout).
  std::map<std::string, std::string> layouts;
  std::string color_format;                            // "" / "BGR" (OVMS default) or "RGB"
  std::vector<float> mean, scale;                      // per channel, built into the model
  // mapping_config.json: the model's tensor name -> the name every API serves.
  std::map<std::string, std::string> input_names, output_names;
  BatchingOptions batching;                            // max_batch_size 0: no dynamic batching
  int max_queue_size = 0;                              // jobs queued beyond this are refused; 0: no bound
  // Unbatched runs whose measured mean is at most this many µs go inline (sched/pool_scheduler.hpp).
  uint64_t inline_max_us = 200;
  bool echo = false;                                   // transport floor: no compile, outputs echo inputs
  // Stateful model (sched/sequence.hpp): requests come in sequences whose state variables are
  // kept between requests. (idle_sequence_cleanup is the control plane's: it runs the cleaner.)
  bool stateful = false;
  uint32_t max_sequence_number = 500;
  bool low_latency_transformation = false;             // ov::pass::LowLatency2 before compiling
};

// One request input against one declared input: precision, shape, content size (OVMS's messages,
// "; input name: <name>" appended). Microseconds; any thread.
Status validate_input(const InputTensor& in, const TensorInfo& info);

class ModelInstance {
 public:
  // Reads, renames, reshapes, adds pre-processing and compiles (not in echo
  // mode). Blocking: seconds. Errors: INVALID_ARGUMENT for a bad option,
  // FAILED_PRECONDITION when OpenVINO cannot load the model.
  static Status create(ov::Core& core, const ModelOptions& opts, std::unique_ptr<ModelInstance>* out);

  const ModelOptions& options() const { return opts_; }
  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  bool echo() const { return opts_.echo; }
  // Echo mode has no compiled model; callers check echo() first.
  ov::CompiledModel& compiled() { return compiled_; }
  // Infer requests to create: `nireq`, else OpenVINO's optimum (1 in echo mode).
  int pool_size() const { return pool_size_; }
  int streams() const { return streams_; }

  // True when some input carries encoded images (BYTES for a rank-4 numeric model input).
  bool needs_decode(const InferJob& job) const;
  // Decodes those inputs in place (JPEG/PNG -> NHWC pixels). Milliseconds per
  // image: never call it on an event loop thread.
  Status decode_images(InferJob& job) const;
  // How encoded images for input `name` would be decoded: false when it has no
  // such input or its layout is not N..HWC (OVMS: UNSUPPORTED_LAYOUT); `order`
  // gets the ColorOrder (codec/image.hpp) as an int. A pipeline that decodes
  // once for all the nodes an input feeds asks each model node (dag_spec.cpp).
  bool image_input(const std::string& name, int* order) const;
  // Checks the job against the signature (names, dtypes, shapes, sizes,
  // requested outputs) and puts its inputs in model order. Microseconds.
  Status validate(InferJob& job) const;
  // Index of the output called `name`, or -1.
  int output_index(const std::string& name) const;

 private:
  ModelInstance() = default;
  Status build(ov::Core& core);
  Status check_batchable() const;
  const TensorInfo* find_input(const std::string& name, size_t* index) const;

  ModelOptions opts_;
  ov::CompiledModel compiled_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::vector<bool> image_nhwc_ok_;   // per input: its layout accepts decoded NHWC images
  int color_order_ = 0;               // ColorOrder of decoded images
  int pool_size_ = 1;
  int streams_ = 1;
};

}  // namespace ovfast

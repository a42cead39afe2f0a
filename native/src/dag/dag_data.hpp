// What flows along a pipeline's connections, and the tensor work of
// demultiplexing and gathering. Private to native/src/dag.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <openvino/runtime/tensor.hpp>

#include "ovfast/dag/dag_spec.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast::dag {

// One tensor on a connection: dense bytes at `data` (kept alive by `owner`;
// null when the request owns them), or, for BYTES straight from the request,
// `raw` (the request's input, for a model node's BYTES input; encoded images
// are decoded before the entry's data is made, decode_images). NOTE: no ov::Tensor is kept: its reference count lives inside
// libopenvino, where ThreadSanitizer cannot see it, and a request's data is
// made and dropped on different threads. view() makes one for the thread at hand.
struct DagData {
  ov::element::Type type;
  ov::Shape shape;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  std::shared_ptr<void> owner;
  const InputTensor* raw = nullptr;

  ov::Tensor view() const { return ov::Tensor(type, shape, data); }
};

// True when some input of `job` (in pipeline order) carries encoded images for an image input.
bool has_images(const InferJob& job, const std::vector<DagImageInput>& plan);
// Decodes those inputs in place (codec/image.hpp, OVMS's checks and messages), then checks
// the pixels against the pipeline's signature. Milliseconds per image: not on an event loop.
Status decode_images(InferJob& job, const std::vector<DagImageInput>& plan, const std::vector<TensorInfo>& infos);
// A request input as connection data: fixed-size types without a copy.
DagData from_request(const InputTensor& in);
// An owned copy of `src` (a view of an infer request's buffer, or a library's output); numeric types only.
Status copy_out(const ov::Tensor& src, const std::string& name, DagData* out);
// Shard `i` of `parent` along dim 0 (the dim dropped), viewing the parent's memory.
DagData shard(const DagData& parent, size_t i);
// Stacks shards of one shape and type along a new dim 0 (one copy). `what`
// names them in errors (OVMS: PIPELINE_INCONSISTENT_SHARD_DIMENSIONS).
Status stack(const std::vector<DagData>& shards, const std::string& what, DagData* out);
// The data as a model node's input called `name` (a view; images stay encoded).
InputTensor as_input(const DagData& d, const std::string& name);

}  // namespace ovfast::dag

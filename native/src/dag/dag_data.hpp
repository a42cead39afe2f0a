// What flows along a pipeline's connections, and the tensor work of
// demultiplexing and gathering. Private to native/src/dag.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <openvino/runtime/tensor.hpp>

#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast::dag {

// One tensor on a connection: dense bytes at `data` (kept alive by `owner`;
// null when the request owns them), or, for encoded images straight from the
// request, `raw` (the request's input; the model node that takes it decodes
// it). NOTE: no ov::Tensor is kept: its reference count lives inside
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

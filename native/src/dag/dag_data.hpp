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

// One tensor on a connection: `tensor` (its memory kept alive by `owner` when
// it views someone else's), or, for encoded images straight from the request,
// `raw` (the request's input; the model node that takes it decodes it).
struct DagData {
  ov::Tensor tensor;
  std::shared_ptr<void> owner;
  const InputTensor* raw = nullptr;
};

// A request input as connection data: fixed-size types wrapped without a copy.
DagData from_request(const InputTensor& in);
// An owned copy of a tensor that views an infer request's buffer (numeric types only).
Status copy_out(const ov::Tensor& src, const std::string& name, DagData* out);
// Shard `i` of `parent` along dim 0 (the dim dropped), viewing the parent's memory.
DagData shard(const DagData& parent, const std::shared_ptr<void>& keep, size_t i);
// Keeps `parent` (tensor and owner) alive for as long as its shards live.
std::shared_ptr<void> keep_alive(const DagData& parent);
// Stacks shards of one shape and type along a new dim 0 (one copy). `what`
// names them in errors (OVMS: PIPELINE_INCONSISTENT_SHARD_DIMENSIONS).
Status stack(const std::vector<DagData>& shards, const std::string& what, DagData* out);
// The data as a model node's input called `name` (a view; images stay encoded).
InputTensor as_input(const DagData& d, const std::string& name);

}  // namespace ovfast::dag

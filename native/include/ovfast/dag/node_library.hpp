// Custom-node libraries (OVMS's C API, dag/custom_node_interface.h): a
// NodeLibrary is one dlopen'd shared object with its six entry points; a
// CustomNode is one node of a pipeline definition over it — the library's
// initialize() called with that node's params, deinitialize() when the node is
// dropped.
//
// Ownership: a CustomNode holds its NodeLibrary (dlclose waits for every node
// over it); a pipeline graph holds its CustomNodes, and so does every request
// in flight on that graph, so deinitialize() runs after the last of them.
// Memory the library returns goes back through its own release(): info arrays
// and dims at once, output data when the last tensor viewing it is dropped
// (the `owner` of each NodeOutput).
// Threading: NodeLibrary and CustomNode are immutable after creation; every
// const method may be called from any thread concurrently (OVMS libraries are
// called concurrently with one manager).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <openvino/runtime/tensor.hpp>

#include "ovfast/dtype.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

struct NodeLibraryApi;  // the six resolved entry points (node_library.cpp)

class NodeLibrary {
 public:
  // dlopen(RTLD_LAZY | RTLD_LOCAL) and all six symbols. FAILED_PRECONDITION
  // when the file cannot be loaded or a symbol is missing (the message says which).
  static Status load(const std::string& path, std::shared_ptr<NodeLibrary>* out);
  ~NodeLibrary();
  NodeLibrary(const NodeLibrary&) = delete;
  NodeLibrary& operator=(const NodeLibrary&) = delete;
  const std::string& path() const { return path_; }
  const NodeLibraryApi& api() const { return *api_; }

 private:
  NodeLibrary() = default;
  std::string path_;
  void* handle_ = nullptr;
  std::unique_ptr<NodeLibraryApi> api_;
};

// One declared input or output of a node; dims -1 = any size (the library's 0).
struct NodeTensorInfo {
  std::string name;
  DataType dtype = DataType::INVALID;
  Shape dims;
};

// A tensor a node produced: `tensor` views memory kept alive by `owner`
// (null when the tensor owns its memory).
struct NodeTensor {
  ov::Tensor tensor;
  std::shared_ptr<void> owner;
};

class CustomNode : public std::enable_shared_from_this<CustomNode> {
 public:
  // Calls initialize() with `params`, then reads the declared inputs and
  // outputs. FAILED_PRECONDITION when any of them fails or returns a corrupt
  // answer. Blocking only as long as the library's own calls.
  static Status create(std::shared_ptr<NodeLibrary> library, std::map<std::string, std::string> params,
                       std::shared_ptr<CustomNode>* out);
  ~CustomNode();  // deinitialize()
  CustomNode(const CustomNode&) = delete;
  CustomNode& operator=(const CustomNode&) = delete;

  const std::vector<NodeTensorInfo>& inputs() const { return inputs_; }
  const std::vector<NodeTensorInfo>& outputs() const { return outputs_; }
  const std::string& library_path() const { return library_->path(); }

  // Runs execute() on `inputs` (name -> dense tensor; read-only for the
  // library, valid during the call). On OK `out` holds every output the
  // library returned, by name, each viewing the library's data (released
  // through release() when the last view goes; each owner holds this node,
  // so deinitialize() comes after the last release()). Errors (INTERNAL, "Custom
  // node failed during execution" and the like): non-zero return, a null or
  // empty output array, an output without name or precision, null data, a
  // size that disagrees with its dims, a declared output missing. Whatever
  // the library returned is released on every error path.
  Status execute(const std::vector<std::pair<std::string, ov::Tensor>>& inputs,
                 std::map<std::string, NodeTensor>* out) const;

 private:
  CustomNode() = default;
  std::shared_ptr<NodeLibrary> library_;
  std::map<std::string, std::string> params_map_;
  // key0, value0, key1, value1, ... viewing params_map_: the layout of a CustomNodeParam array.
  std::vector<const char*> params_;
  void* manager_ = nullptr;
  bool initialized_ = false;
  std::vector<NodeTensorInfo> inputs_, outputs_;
};

// OVMS precision enum value <-> DataType (INVALID for UNSPECIFIED and unknown values).
DataType node_precision_to_dtype(int precision);
int dtype_to_node_precision(DataType dt);  // 0 (UNSPECIFIED) when the ABI has no such precision

}  // namespace ovfast

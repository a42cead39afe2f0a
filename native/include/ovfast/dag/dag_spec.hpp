// DagGraph: one pipeline definition made ready to run — its nodes (model
// nodes over the models' Servables, custom nodes over their libraries), the
// connections between them, where demultiplexing splits and gathering joins,
// and the pipeline's signature. Built once per definition (and again on every
// revalidation), then immutable.
//
// The control plane (src/ovfast/config/dag.py) validates a definition with
// OVMS's errors before it builds a spec; DagGraph::create checks again only
// what execution relies on (indices, topological order, consistent demux
// levels) and answers INVALID_ARGUMENT otherwise.
//
// Ownership: a graph holds a reference on every Servable and CustomNode it
// uses; a request holds its graph until it completes, so a request in flight
// always finishes on the graph (and the model versions) it started on.
// Threading: immutable after create(); read from any thread without locks.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ovfast/dag/node_library.hpp"
#include "ovfast/model/model_instance.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

class Servable;

// Node index 0 is always the entry ("request"): its outputs are the request's inputs.
inline constexpr int kEntryNode = 0;

struct DagEdge {
  int src = kEntryNode;    // producing node
  std::string src_output;  // its output (a model's served output name, a library's output, a request input)
  std::string dst_input;   // the consuming node's input name
};

struct DagNodeSpec {
  std::string name;
  std::shared_ptr<Servable> model;    // a model node, or
  std::shared_ptr<CustomNode> custom; // a custom node (neither: the entry)
  std::vector<DagEdge> inputs;
  // Splits every output along dim 0 into sub-requests: count > 0 exactly that
  // many, 0 as many as there are (OVMS's -1 and 0).
  bool demultiplex = false;
  int64_t demultiply_count = 0;
  int gather_from = -1;  // joins the sub-requests of this demultiplexing node before running
};

struct DagOutputSpec {
  std::string name;  // as the response carries it
  int src = kEntryNode;
  std::string src_output;
};

struct DagSpec {
  std::string name;
  std::vector<DagNodeSpec> nodes;      // [0] = entry; each node after every node it reads from
  std::vector<DagOutputSpec> outputs;  // the response
  std::vector<TensorInfo> inputs_info, outputs_info;  // the pipeline's signature (metadata, request checks)
};

// A pipeline input that takes encoded images (JPEG/PNG as BYTES for a numeric
// input of rank 4, or 5 when the entry demultiplexes): decoded once per
// request, before any node runs, and the pixels shared by every node it feeds
// (OVMS decodes at the entry node with the pipeline input's metadata).
struct DagImageInput {
  size_t input = 0;        // index into DagSpec::inputs_info
  ov::PartialShape shape;  // N,H,W,C the images are decoded to (the entry's demultiplexing dimension left out)
  DataType dtype = DataType::UINT8;
  bool nhwc_ok = true;     // every model node fed by it takes NHWC images (custom nodes declare no layout)
  int order = 0;           // ColorOrder: RGB when every model node fed by it says so, else BGR (OVMS)
  bool demultiplexed = false;  // the entry demultiplexes: N images become [N,1,H,W,C]
};

// Dynamic demultiplexing is bounded, as OVMS (PIPELINE_TOO_LARGE_DIMENSION_SIZE_TO_DEMULTIPLY).
inline constexpr int64_t kMaxDemultiply = 10000;

class DagGraph {
 public:
  static Status create(DagSpec spec, std::shared_ptr<const DagGraph>* out);

  const DagSpec& spec() const { return spec_; }
  const DagNodeSpec& node(int i) const { return spec_.nodes[static_cast<size_t>(i)]; }
  int size() const { return static_cast<int>(spec_.nodes.size()); }
  // Demultiplexing nodes whose sub-requests a node runs in, outermost first
  // (what its inputs carry, after its own gather). The entry's is empty.
  const std::vector<int>& levels(int node) const { return levels_[static_cast<size_t>(node)]; }
  // The same for the data of a pipeline output (all of them are gathered at the response).
  const std::vector<int>& output_levels(size_t output) const { return output_levels_[output]; }
  // Where a node's outputs go: (consumer node, index into its inputs).
  const std::vector<std::pair<int, size_t>>& consumers(int node) const { return consumers_[static_cast<size_t>(node)]; }
  // Pipeline outputs fed by a node.
  const std::vector<size_t>& outputs_of(int node) const { return outputs_of_[static_cast<size_t>(node)]; }
  // The inputs that take encoded images, and how they are decoded.
  const std::vector<DagImageInput>& image_inputs() const { return image_inputs_; }

 private:
  DagGraph() = default;
  DagSpec spec_;
  std::vector<std::vector<int>> levels_;
  std::vector<std::vector<int>> output_levels_;
  std::vector<std::vector<std::pair<int, size_t>>> consumers_;
  std::vector<std::vector<size_t>> outputs_of_;
  std::vector<DagImageInput> image_inputs_;
};

}  // namespace ovfast

#include "ovfast/dag/dag_spec.hpp"

#include "ovfast/servable.hpp"

namespace ovfast {
namespace {

// The demultiplexing levels of what node `n` produces: its own, plus itself when it splits.
std::vector<int> data_levels(const DagSpec& spec, const std::vector<std::vector<int>>& levels, int n) {
  std::vector<int> l = levels[static_cast<size_t>(n)];
  if (spec.nodes[static_cast<size_t>(n)].demultiplex) l.push_back(n);
  return l;
}

// The levels shared by every connection in `srcs`; INVALID_ARGUMENT when they differ.
Status common_levels(const DagSpec& spec, const std::vector<std::vector<int>>& levels, const std::vector<int>& srcs,
                     const std::string& who, std::vector<int>* out) {
  for (size_t i = 0; i < srcs.size(); ++i) {
    std::vector<int> l = data_levels(spec, levels, srcs[i]);
    if (i == 0) *out = std::move(l);
    else if (l != *out)
      return invalid_argument("Pipeline " + spec.name + ": the inputs of " + who +
                              " come from different demultiplexing levels");
  }
  return Status::ok();
}

// The pipeline inputs that take encoded images: numeric, NHWC-ranked (one more
// dimension first when the entry demultiplexes). `consumers`: the entry's.
std::vector<DagImageInput> plan_images(const DagSpec& spec, const std::vector<std::pair<int, size_t>>& consumers) {
  std::vector<DagImageInput> plan;
  const bool demux = spec.nodes[0].demultiplex;
  for (size_t i = 0; i < spec.inputs_info.size(); ++i) {
    const TensorInfo& info = spec.inputs_info[i];
    const size_t rank = demux ? 5 : 4;
    if (info.dtype == DataType::BYTES || info.shape.rank().is_dynamic() || info.shape.size() != rank) continue;
    DagImageInput in;
    in.input = i;
    in.dtype = info.dtype;
    in.demultiplexed = demux;
    if (demux) {
      if (!info.shape[1].compatible(ov::Dimension(1))) continue;  // items are not single images
      in.shape = ov::PartialShape{info.shape[0], info.shape[2], info.shape[3], info.shape[4]};
    } else {
      in.shape = info.shape;
    }
    int models = 0, rgb = 0;
    for (const auto& [dst, k] : consumers) {
      const DagNodeSpec& node = spec.nodes[static_cast<size_t>(dst)];
      if (node.inputs[k].src_output != info.name || !node.model || node.model->is_pipeline()) continue;
      int order = 0;
      if (!node.model->model().image_input(node.inputs[k].dst_input, &order)) in.nhwc_ok = false;
      ++models;
      rgb += order != 0;
    }
    in.order = models > 0 && rgb == models ? 1 : 0;
    plan.push_back(std::move(in));
  }
  return plan;
}

}  // namespace

Status DagGraph::create(DagSpec spec, std::shared_ptr<const DagGraph>* out) {
  const int n = static_cast<int>(spec.nodes.size());
  if (n == 0 || spec.nodes[0].model || spec.nodes[0].custom || !spec.nodes[0].inputs.empty())
    return invalid_argument("Pipeline " + spec.name + ": node 0 must be the entry (no model, library or inputs)");
  if (spec.outputs.empty()) return invalid_argument("Pipeline " + spec.name + ": no outputs");
  std::shared_ptr<DagGraph> g(new DagGraph());
  g->levels_.resize(static_cast<size_t>(n));
  g->consumers_.resize(static_cast<size_t>(n));
  g->outputs_of_.resize(static_cast<size_t>(n));
  const DagNodeSpec& entry = spec.nodes[0];
  if (entry.demultiplex && (entry.demultiply_count < 0 || entry.demultiply_count > kMaxDemultiply))
    return invalid_argument("Pipeline " + spec.name + ": demultiply_count out of range");
  for (int i = 1; i < n; ++i) {
    const DagNodeSpec& node = spec.nodes[static_cast<size_t>(i)];
    if (!node.model == !node.custom)
      return invalid_argument("Pipeline " + spec.name + ": node " + node.name + " needs a model or a library");
    if (node.inputs.empty()) return invalid_argument("Pipeline " + spec.name + ": node " + node.name + " has no inputs");
    if (node.demultiplex && (node.demultiply_count < 0 || node.demultiply_count > kMaxDemultiply))
      return invalid_argument("Pipeline " + spec.name + ": demultiply_count of " + node.name + " out of range");
    std::vector<int> srcs;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int src = node.inputs[k].src;
      // NOTE: every source before its consumer: the order is topological, so no cycle can exist.
      if (src < 0 || src >= i)
        return invalid_argument("Pipeline " + spec.name + ": node " + node.name +
                                " reads from a node that does not come before it");
      srcs.push_back(src);
      g->consumers_[static_cast<size_t>(src)].push_back({i, k});
    }
    std::vector<int> l;
    OVF_RETURN_IF_ERROR(common_levels(spec, g->levels_, srcs, node.name, &l));
    if (node.gather_from >= 0) {
      if (l.empty() || l.back() != node.gather_from)
        return invalid_argument("Pipeline " + spec.name + ": node " + node.name +
                                " gathers from a node that is not its innermost demultiplexer");
      l.pop_back();
    }
    g->levels_[static_cast<size_t>(i)] = std::move(l);
  }
  for (size_t o = 0; o < spec.outputs.size(); ++o) {
    const int src = spec.outputs[o].src;
    if (src < 0 || src >= n) return invalid_argument("Pipeline " + spec.name + ": output from an unknown node");
    g->outputs_of_[static_cast<size_t>(src)].push_back(o);
    g->output_levels_.push_back(data_levels(spec, g->levels_, src));
  }
  g->image_inputs_ = plan_images(spec, g->consumers_[kEntryNode]);
  g->spec_ = std::move(spec);
  *out = std::move(g);
  return Status::ok();
}

}  // namespace ovfast

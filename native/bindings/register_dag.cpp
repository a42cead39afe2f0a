// DAG bindings: custom-node libraries and nodes, and a pipeline built into a
// Servable (served, routed and counted like a model). The control plane
// (src/ovfast/repository/pipelines.py) validates definitions first; this
// layer only converts types. Every call that may block releases the GIL.
#include "py_common.hpp"

#include "ovfast/dag/dag_executor.hpp"
#include "ovfast/dag/node_library.hpp"

namespace py = pybind11;

namespace ovfast::bindings {
namespace {

py::list node_infos(const std::vector<NodeTensorInfo>& infos) {
  py::list out;
  for (const NodeTensorInfo& t : infos)
    out.append(py::make_tuple(t.name, std::string(datatype_info(t.dtype).kserve_name), t.dims));
  return out;
}

TensorInfo tensor_info(const py::handle& item) {
  auto t = item.cast<std::tuple<std::string, std::string, std::optional<std::vector<int64_t>>>>();
  TensorInfo info;
  info.name = std::get<0>(t);
  info.dtype = datatype_from_name(std::get<1>(t));
  if (info.dtype == DataType::INVALID) throw py::value_error("unknown datatype " + std::get<1>(t));
  if (!std::get<2>(t)) {
    info.shape = ov::PartialShape::dynamic();
    return info;
  }
  std::vector<ov::Dimension> dims;
  for (int64_t d : *std::get<2>(t)) dims.push_back(d < 0 ? ov::Dimension::dynamic() : ov::Dimension(d));
  info.shape = ov::PartialShape(dims);
  return info;
}

// nodes: [(name, servable | None, custom | None, [(src, src_output, dst_input)], demultiply | None, gather_from)],
// node 0 the entry; demultiply: None (no split), or the count (0 = dynamic).
PyServable make_pipeline(const std::string& name, const py::list& nodes, const py::list& outputs,
                         const py::list& inputs_info, const py::list& outputs_info,
                         std::shared_ptr<CompletionQueue> queue) {
  DagSpec spec;
  spec.name = name;
  for (auto item : nodes) {
    py::tuple t = item.cast<py::tuple>();
    if (t.size() != 6) throw py::value_error("a node is (name, servable, custom, inputs, demultiply, gather_from)");
    DagNodeSpec n;
    n.name = t[0].cast<std::string>();
    if (!t[1].is_none()) n.model = t[1].cast<PyServable&>().shared();
    if (!t[2].is_none()) n.custom = t[2].cast<std::shared_ptr<CustomNode>>();
    for (auto e : t[3].cast<py::list>()) {
      auto edge = e.cast<std::tuple<int, std::string, std::string>>();
      n.inputs.push_back({std::get<0>(edge), std::get<1>(edge), std::get<2>(edge)});
    }
    if (!t[4].is_none()) {
      n.demultiplex = true;
      n.demultiply_count = std::max<int64_t>(0, t[4].cast<int64_t>());
    }
    n.gather_from = t[5].cast<int>();
    spec.nodes.push_back(std::move(n));
  }
  for (auto item : outputs) {
    auto o = item.cast<std::tuple<std::string, int, std::string>>();
    spec.outputs.push_back({std::get<0>(o), std::get<1>(o), std::get<2>(o)});
  }
  for (auto item : inputs_info) spec.inputs_info.push_back(tensor_info(item));
  for (auto item : outputs_info) spec.outputs_info.push_back(tensor_info(item));
  std::shared_ptr<const DagGraph> graph;
  throw_if_error(DagGraph::create(std::move(spec), &graph));
  std::shared_ptr<Servable> made = Servable::create_pipeline(
      graph->spec().inputs_info, graph->spec().outputs_info,
      [&](ServableMetrics& m) { return std::make_unique<DagScheduler>(graph, m); });
  return PyServable(std::move(made), queue);
}

}  // namespace

void register_dag(py::module_& m, py::class_<PyServable>& servable) {
  py::class_<NodeLibrary, std::shared_ptr<NodeLibrary>>(
      m, "NodeLibrary", "A custom-node library (OVMS's C API), loaded with dlopen.")
      .def(py::init([](const std::string& path) {
             std::shared_ptr<NodeLibrary> lib;
             Status st;
             {
               py::gil_scoped_release release;
               st = NodeLibrary::load(path, &lib);
             }
             throw_if_error(st);
             return lib;
           }), py::arg("path"),
           "Loads the library and its six entry points; FailedPreconditionError otherwise. Releases the GIL.")
      .def_property_readonly("path", &NodeLibrary::path);

  py::class_<CustomNode, std::shared_ptr<CustomNode>>(
      m, "CustomNode", "One custom node over a library: initialize()d with its params, deinitialize()d when dropped.")
      .def(py::init([](std::shared_ptr<NodeLibrary> lib, std::map<std::string, std::string> params) {
             std::shared_ptr<CustomNode> node;
             Status st;
             {
               py::gil_scoped_release release;
               st = CustomNode::create(std::move(lib), std::move(params), &node);
             }
             throw_if_error(st);
             return node;
           }), py::arg("library"), py::arg("params"),
           "Calls initialize(params) and reads the declared tensors; FailedPreconditionError when the library "
           "fails. Releases the GIL.")
      .def_property_readonly("inputs", [](const CustomNode& n) { return node_infos(n.inputs()); },
                             "[(name, datatype, dims)] as the library declares them; dims -1 = any size.")
      .def_property_readonly("outputs", [](const CustomNode& n) { return node_infos(n.outputs()); });

  servable.def_static("pipeline", &make_pipeline, py::arg("name"), py::arg("nodes"), py::arg("outputs"),
                      py::arg("inputs_info"), py::arg("outputs_info"), py::arg("queue"),
                      "A pipeline served like a model. nodes: [(name, Servable | None, CustomNode | None, "
                      "[(source node index, source output, input name)], demultiply_count | None, gather_from "
                      "index | -1)], node 0 the request (entry), each node after its sources; outputs: [(name, "
                      "node index, node output)]; inputs_info / outputs_info: [(name, datatype, shape | None)] "
                      "(-1 = any size, None = any rank). "
                      "Raises InvalidArgumentError for a graph that cannot run.");
  servable.def_property_readonly("is_pipeline", [](PyServable& s) { return s.impl().is_pipeline(); });
}

}  // namespace ovfast::bindings

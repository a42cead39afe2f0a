// Model bindings: ModelOptions (every knob of a version, as one struct) and
// the Servable that runs it. Knobs are validated in Python (src/ovfast/config)
// before they get here; this layer only converts types.
#include "py_common.hpp"
#include "ovfast/memory_usage.hpp"

#include <algorithm>

namespace py = pybind11;

namespace ovfast::bindings {
namespace {

using DimPair = std::pair<int64_t, int64_t>;

std::map<std::string, std::vector<DimPair>> shapes_out(const ModelOptions& o) {
  std::map<std::string, std::vector<DimPair>> out;
  for (const auto& [name, spec] : o.shapes)
    for (const DimRange& d : spec) out[name].push_back({d.min, d.max});
  return out;
}

DimRange dim_in(const DimPair& p) {
  if (p.first < 0 || (p.second != -1 && p.second < p.first))
    throw py::value_error("a dimension is (min, max) with 0 <= min <= max, or max -1 for no bound");
  return {p.first, p.second};
}

py::dict statistics(PyServable& s) {
  const InferStatistics& st = s.impl().metrics().stats;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return py::dict(py::arg("success_count") = get(st.success_count), py::arg("success_ns") = get(st.success_ns),
                  py::arg("fail_count") = get(st.fail_count), py::arg("fail_ns") = get(st.fail_ns),
                  py::arg("queue_ns") = get(st.queue_ns), py::arg("compute_ns") = get(st.compute_ns),
                  py::arg("inference_count") = get(st.inference_count),
                  py::arg("execution_count") = get(st.execution_count),
                  py::arg("last_inference_ms") = get(st.last_inference_ms));
}

}  // namespace

py::class_<PyServable> register_model(py::module_& m) {
  py::class_<ModelOptions>(m, "ModelOptions", "Every knob of one model version, validated by the config layer.")
      .def(py::init<>())
      .def_readwrite("model_path", &ModelOptions::model_path)
      .def_readwrite("device", &ModelOptions::device)
      .def_readwrite("plugin_config", &ModelOptions::plugin_config, "{key: value}, passed to compile_model as is.")
      .def_readwrite("nireq", &ModelOptions::nireq, "Infer requests; 0 = OpenVINO's optimal number.")
      .def_property("shapes", &shapes_out,
                    [](ModelOptions& o, const std::map<std::string, std::vector<DimPair>>& v) {
                      o.shapes.clear();
                      for (const auto& [name, dims] : v)
                        for (const DimPair& d : dims) o.shapes[name].push_back(dim_in(d));
                    },
                    "{input name ('' = the only input): [(min, max), ...]}; max -1 = unbounded, min == max static.")
      .def_property("batch_size",
                    [](const ModelOptions& o) -> std::optional<DimPair> {
                      if (!o.batch_size) return std::nullopt;
                      return DimPair{o.batch_size->min, o.batch_size->max};
                    },
                    [](ModelOptions& o, std::optional<DimPair> v) {
                      o.batch_size = v ? std::optional<DimRange>(dim_in(*v)) : std::nullopt;
                    },
                    "(min, max) for dim 0 of every input, or None; `shapes` wins over it.")
      .def_readwrite("layouts", &ModelOptions::layouts, "{name: 'NHWC:NCHW' or 'NHWC'}")
      .def_readwrite("color_format", &ModelOptions::color_format)
      .def_readwrite("mean", &ModelOptions::mean)
      .def_readwrite("scale", &ModelOptions::scale)
      .def_readwrite("input_names", &ModelOptions::input_names, "mapping_config.json: {model name: served name}")
      .def_readwrite("output_names", &ModelOptions::output_names)
      .def_property("max_batch_size", [](const ModelOptions& o) { return o.batching.max_batch_size; },
                    [](ModelOptions& o, int v) {
                      if (v < 0) throw py::value_error("max_batch_size must be >= 0");
                      o.batching.max_batch_size = v;
                    }, "Dynamic batching: rows per batch; 0 = off.")
      .def_property("max_queue_delay_us", [](const ModelOptions& o) { return o.batching.max_queue_delay_us; },
                    [](ModelOptions& o, uint64_t v) { o.batching.max_queue_delay_us = v; })
      .def_property("preferred_batch_sizes", [](const ModelOptions& o) { return o.batching.preferred_batch_sizes; },
                    [](ModelOptions& o, std::vector<int> v) {
                      std::sort(v.begin(), v.end());
                      o.batching.preferred_batch_sizes = std::move(v);
                    })
      .def_readwrite("max_queue_size", &ModelOptions::max_queue_size,
                     "Jobs queued (waiting for an infer request or a batch) beyond which submit refuses; 0 = no bound.")
            .def_readwrite("echo", &ModelOptions::echo, "Transport floor: no inference, outputs echo inputs.")
      .def_readwrite("stateful", &ModelOptions::stateful, "Requests come in sequences that keep the model's state.")
      .def_readwrite("max_sequence_number", &ModelOptions::max_sequence_number, "Live sequences at most (stateful).")
      .def_readwrite("low_latency_transformation", &ModelOptions::low_latency_transformation,
                     "Apply OpenVINO's LowLatency2 before compiling (stateful).");

  m.def("memory_sample", [] {
        MemorySample s = sample_memory();
        return py::make_tuple(s.rss_bytes, s.heap_bytes);
      }, "(resident set size, allocator bytes in use) of this process, bytes.");
  m.def("resident_bytes", &resident_bytes,
        "Resident set size of this process, bytes (/proc/self/statm; takes no allocator lock).");
  m.def("release_free_memory", [] { py::gil_scoped_release r; release_free_memory(); },
        "Returns free allocator memory to the system (malloc_trim). Releases the GIL.");

  py::class_<PyServable> servable(m, "Servable");
  servable
      .def(py::init<ov::Core&, const ModelOptions&, std::shared_ptr<CompletionQueue>, std::shared_ptr<ManualClock>>(),
           py::arg("core"), py::arg("options"), py::arg("queue"), py::arg("clock") = nullptr,
           "Reads and compiles the model (blocking; releases the GIL). Results of submitted jobs arrive through "
           "`queue`. `clock`: a ManualClock for dynamic-batching tests, else the steady clock.")
      .def_property_readonly("inputs", [](PyServable& s) { return tensor_infos(s.impl().inputs()); })
      .def_property_readonly("outputs", [](PyServable& s) { return tensor_infos(s.impl().outputs()); })
      .def_property_readonly("nireq", [](PyServable& s) { return s.impl().nireq(); })
      .def_property_readonly("streams", [](PyServable& s) { return s.impl().streams(); })
      .def_property_readonly("active", [](PyServable& s) { return s.impl().active(); })
      .def_property_readonly("queued", [](PyServable& s) { return s.impl().queued(); })
      .def_property_readonly("in_flight", [](PyServable& s) { return s.impl().in_flight(); },
                             "Jobs decoding, queued or running on this version (0: an unload cuts nothing off).")
      .def_property_readonly("memory_bytes", [](PyServable& s) { return s.impl().memory_bytes(); },
                             "What loading this version cost in memory (read + compile + infer requests), "
                             "measured around the load: bytes.")
      .def_property_readonly("max_batch_size", [](PyServable& s) { return s.impl().max_batch_size(); },
                             "Rows per batch when dynamic batching is on; 0 when it is off.")
      .def("submit_tensors", &PyServable::submit_tensors, py::arg("inputs"), py::arg("outputs"), py::arg("context"),
           py::arg("route") = kNoRoute, py::arg("received_ns") = 0,
           py::arg("sequence") = py::none(),
           "Starts inference on [(name, datatype, shape, buffer)]; buffers are used in place (pinned until "
           "completion). `route` counts the request natively; `received_ns` (time.monotonic_ns() at receipt) "
           "starts its request-time clock. `sequence`: (id: int | str, start: bool, end: bool) from KServe "
           "request parameters, or None. Returns the job's keepalive, whose cancel() drops the job if it has "
           "not started. Releases the GIL while starting.")
      .def("statistics", &statistics,
           "Triton statistics of this version, counted natively on every path: {success_count, success_ns, "
           "fail_count, fail_ns, queue_ns, compute_ns, inference_count, execution_count, last_inference_ms}.")
      .def("record_failure", [](PyServable& s, uint64_t received_ns) {
             s.impl().metrics().job_refused(kNoRoute, received_ns);
           }, py::arg("received_ns"),
           "Counts a request for this version that failed before submit (Triton statistics); `received_ns` is "
           "time.monotonic_ns() at receipt.")
      .def("sweep_idle_sequences", [](PyServable& s) {
             py::gil_scoped_release r;
             return s.impl().sweep_idle_sequences();
           },
           "One pass of the idle-sequence cleaner: removes the sequences flagged idle by the previous pass and "
           "flags the others (a request clears the flag). Returns how many were removed; 0 for a model that is "
           "not stateful. Releases the GIL.")
      .def("sequence_stats", [](PyServable& s) {
             SequenceStats st = s.impl().sequence_stats();
             return py::make_tuple(st.sequences, st.state_bytes);
           },
           "(live sequences, bytes of their saved state); zeros for a model that is not stateful.")
      .def("drain", [](PyServable& s) { py::gil_scoped_release r; s.impl().drain(); },
           "Blocks until nothing is decoding, queued or running. Releases the GIL.")
      .def("flush", [](PyServable& s) { py::gil_scoped_release r; s.impl().flush(); },
           "From now on, batches start without waiting out the queue delay (shutdown). Non-blocking.");
  return servable;
}

}  // namespace ovfast::bindings

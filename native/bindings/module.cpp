// The only translation unit that includes pybind11. Rules (design.md):
// convert arguments with the GIL held, release it for every native section,
// never let an OpenVINO thread touch Python.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/numpy.h>

#include <array>
#include <memory>

#include <openvino/core/version.hpp>
#include <openvino/runtime/core.hpp>

#include "ovfast/completion.hpp"
#include "ovfast/codec/kserve.hpp"
#include "ovfast/servable.hpp"
#include "py_common.hpp"
#include "register_metrics.hpp"

namespace py = pybind11;
using namespace ovfast;
using namespace ovfast::bindings;

namespace ovfast::bindings {
std::array<PyObject*, 15> g_errors{};
void register_tfs(py::module_& m);
void register_transport(py::module_& m);
py::class_<PyServable> register_model(py::module_& m);
void register_dag(py::module_& m, py::class_<PyServable>& servable);
}

namespace {

// A parsed ModelInferRequest.
class KServeRequest : public ParsedRequest {
 public:
  explicit KServeRequest(py::handle buffer) : ParsedRequest(buffer) {
    parse([](const uint8_t* d, size_t n, InferJob* job) { return parse_kserve_request(d, n, job); });
    model_name_ = job_->model_name;
    model_version_ = job_->model_version;
    id_ = job_->id;
  }
  const std::string& model_name() const { return model_name_; }
  const std::string& model_version() const { return model_version_; }
  const std::string& id() const { return id_; }

 private:
  std::string model_name_, model_version_, id_;
};

void submit_kserve(PyServable& self, py::object req_obj, const std::string& version, py::object context,
                   int route) {
  submit_parsed(self, req_obj, req_obj.cast<KServeRequest&>(), version, context, route, SinkKind::KSERVE);
}

py::list drain(CompletionQueue& q) {
  std::vector<Completion> items;
  {
    py::gil_scoped_release release;
    items = q.drain();
  }
  py::list out;
  for (Completion& c : items) {
    py::object context = py::reinterpret_steal<py::object>(static_cast<PyObject*>(c.context));
    py::object keep = py::reinterpret_steal<py::object>(static_cast<PyObject*>(c.keepalive));
    int code = static_cast<int>(c.status.code());
    py::object message = lenient_str(c.status.message());
    py::object payload = py::none();
    // NOTE: whatever goes wrong converting one result fails that request alone; the others
    // taken in this drain still reach their callers.
    try {
      if (!c.status.is_ok()) {
        payload = py::none();
      } else if (!c.outputs.empty() || c.payload.empty()) {
        py::list outs;
        for (const auto& o : c.outputs)
          outs.append(py::make_tuple(o.name, std::string(datatype_info(o.dtype).kserve_name),
                                     std::vector<int64_t>(o.shape.begin(), o.shape.end()), tensor_to_python(o)));
        payload = std::move(outs);
      } else {
        payload = py::bytes(c.payload);
      }
    } catch (const std::exception& e) {
      PyErr_Clear();
      code = static_cast<int>(StatusCode::INTERNAL);
      message = lenient_str(std::string("Internal server error - cannot hand the result over: ") + e.what());
      payload = py::none();
    }
    out.append(py::make_tuple(context, code, message, payload, c.infer_us, c.wait_us));
    keep = py::object();  // releases the request's pinned buffers (GIL held)
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "ovfast native core: KServe codec, infer-request pools, completion queue";
  m.attr("ABI_VERSION") = OVFAST_ABI_VERSION;
  m.attr("OPENVINO_BUILD_VERSION") = OVFAST_OV_BUILD_VERSION;
  m.def("openvino_runtime_version", [] { return std::string(ov::get_openvino_version().buildNumber); },
        "The version of the OpenVINO runtime library actually loaded.");

  py::object base = py::reinterpret_steal<py::object>(
      PyErr_NewException("ovfast._native.OvfastError", PyExc_Exception, nullptr));
  m.attr("OvfastError") = base;
  const std::array<std::pair<StatusCode, const char*>, 12> names{{
      {StatusCode::INVALID_ARGUMENT, "InvalidArgumentError"},
      {StatusCode::NOT_FOUND, "NotFoundError"},
      {StatusCode::UNAVAILABLE, "UnavailableError"},
      {StatusCode::ALREADY_EXISTS, "AlreadyExistsError"},
      {StatusCode::UNSUPPORTED, "UnsupportedError"},
      {StatusCode::RESOURCE_EXHAUSTED, "ResourceExhaustedError"},
      {StatusCode::DEADLINE_EXCEEDED, "DeadlineExceededError"},
      {StatusCode::CANCELLED, "CancelledError"},
      {StatusCode::INTERNAL, "InternalError"},
      {StatusCode::UNKNOWN, "UnknownError"},
      {StatusCode::FAILED_PRECONDITION, "FailedPreconditionError"},
      {StatusCode::ABORTED, "AbortedError"},
  }};
  for (const auto& [code, name] : names) {
    std::string qual = std::string("ovfast._native.") + name;
    PyObject* cls = PyErr_NewException(qual.c_str(), base.ptr(), nullptr);
    PyObject_SetAttrString(cls, "code", PyLong_FromLong(static_cast<int>(code)));
    m.attr(name) = py::reinterpret_borrow<py::object>(cls);
    g_errors[static_cast<size_t>(code)] = cls;  // module keeps a reference
  }
  m.def("_raise_status", [](int code, const std::string& msg) { raise_status(Status(static_cast<StatusCode>(code), msg)); },
        "Raises the exception registered for `code` (used by the error-table test).");

  m.def("datatypes", [] {
    py::list out;
    for (int i = static_cast<int>(DataType::BOOL); i <= static_cast<int>(DataType::BYTES); ++i) {
      const DataTypeInfo& d = datatype_info(static_cast<DataType>(i));
      out.append(py::make_tuple(std::string(d.kserve_name), std::string(d.tf_name), d.tf_enum,
                                std::string(d.triton_config), d.size, numpy_dtype(d.dtype)));
    }
    return out;
  }, "The one datatype table: [(kserve_name, tf_name, tf_enum, triton_config, element_size, numpy_dtype)]; "
     "element_size 0 and numpy dtype object for BYTES; BF16 travels as raw uint16 bits.");

  py::class_<ov::Core>(m, "Core")
      .def(py::init([] { return std::make_unique<ov::Core>(); }))
      .def("set_property", [](ov::Core& c, const std::string& device, py::dict cfg) {
        auto m = to_any_map(cfg);
        py::gil_scoped_release release;
        if (device.empty()) c.set_property(m); else c.set_property(device, m);
      }, "Sets core properties (e.g. CACHE_DIR). Releases the GIL.")
      .def("add_extension", [](ov::Core& c, const std::string& path) {
        Status st;
        {
          py::gil_scoped_release release;
          try {
            c.add_extension(path);
          } catch (const std::exception& e) {
            st = Status(StatusCode::FAILED_PRECONDITION, "Cannot load OpenVINO extension " + path + ": " + e.what());
          }
        }
        throw_if_error(st);
      }, py::arg("path"), "Loads an OpenVINO extension library (--cpu_extension). Releases the GIL.");

  py::class_<CompletionQueue, std::shared_ptr<CompletionQueue>>(m, "CompletionQueue")
      .def(py::init<>())
      .def("fileno", &CompletionQueue::fd)
      .def("drain", &drain,
           "Takes every finished job: [(context, code, message, payload, infer_us, wait_us)]. "
           "payload is bytes (KServe response) or [(name, datatype, shape, ndarray|list[bytes])].");

  py::class_<ManualClock, std::shared_ptr<ManualClock>>(m, "ManualClock",
                                                        "A clock that moves only when told (dynamic-batching tests).")
      .def(py::init<>())
      .def_property_readonly("now_ns", [](ManualClock& c) { return c.now_ns(); })
      .def("advance_us", [](ManualClock& c, uint64_t us) {
        py::gil_scoped_release release;
        c.advance_ns(us * 1000);
      }, py::arg("us"),
      "Moves the clock forward and returns once every batcher on it has acted on the new time "
      "(dispatched what became due). Releases the GIL.");

  py::class_<KServeRequest>(m, "KServeRequest")
      .def_property_readonly("model_name", &KServeRequest::model_name)
      .def_property_readonly("model_version", &KServeRequest::model_version)
      .def_property_readonly("id", &KServeRequest::id)
      .def_property_readonly("buffer_address", &KServeRequest::buffer_address)
      .def_property_readonly("buffer_size", &KServeRequest::buffer_size)
      .def_property_readonly("input_shapes", &KServeRequest::input_shapes,
                             "{input name: shape} as parsed; readable until the request is submitted.")
      .def_property_readonly("input_addresses", &KServeRequest::input_addresses,
                             "Where each input's data starts (0 for BYTES): proves zero-copy in tests.")
      .def("cancel", &KServeRequest::cancel, "The client went away: drops the job if it has not started.");
  m.def("parse_kserve_request", [](py::handle buf) { return std::make_unique<KServeRequest>(buf); },
        py::arg("buffer"),
        "Parses serialized ModelInferRequest bytes without copying tensor data. Releases the GIL while parsing.");

  m.def("string_tensor_bytes",
        [](py::handle buf, const std::string& name) {
          PinnedBuffer pb(buf);
          BytesElements e;
          throw_if_error(BytesElements::prefixed(pb.data(), pb.size(), name, &e));
          return e.string_tensor_bytes();
        },
        py::arg("buffer"), py::arg("name") = "",
        "What BYTES elements packed as (4-byte little-endian length, bytes)* will hold as an OpenVINO string "
        "tensor (a std::string each, plus heap copies of long elements); InvalidArgumentError naming input `name` "
        "if malformed.");

  m.def("set_decode_limits",
        [](size_t max_inputs, size_t max_outputs, size_t max_dims, size_t max_parameters) {
          set_decode_limits({max_inputs, max_outputs, max_dims, max_parameters});
        },
        py::arg("max_inputs"), py::arg("max_outputs"), py::arg("max_dims"), py::arg("max_parameters"),
        "Sets the process-wide request decoding limits (both wire codecs); call before serving.");
  m.def("decode_limits",
        [] {
          DecodeLimits l = decode_limits();
          return py::dict(py::arg("max_inputs") = l.max_inputs, py::arg("max_outputs") = l.max_outputs,
                          py::arg("max_dims") = l.max_dims, py::arg("max_parameters") = l.max_parameters);
        },
        "The process-wide request decoding limits, as a dict.");

  py::class_<BufferSet>(m, "_BufferSet")
      .def("cancel", [](BufferSet& b) { b.cancelled.store(true, std::memory_order_relaxed); },
           "The client went away: the job is dropped (answered CANCELLED, counted as failed) if it has "
           "not started; one that runs is answered as usual.");

  py::class_<PyServable> servable = register_model(m);
  servable.def("submit_kserve", &submit_kserve, py::arg("request"), py::arg("version"), py::arg("context"),
               py::arg("route") = kNoRoute,
               "Starts inference for a parsed request; the serialized ModelInferResponse arrives through the "
               "CompletionQueue with `context`. Raises on validation errors. `route` (metrics) counts the request "
               "natively. Releases the GIL while starting.");
  register_image(m);
  register_metrics(m, servable);
  register_tfs(m);
  register_transport(m);
  register_dag(m, servable);
}

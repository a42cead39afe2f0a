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
#include "ovfast/kserve_codec.hpp"
#include "ovfast/servable.hpp"

namespace py = pybind11;
using namespace ovfast;

namespace {

// Exception classes, registered once; handles cached (index = StatusCode).
std::array<PyObject*, 12> g_errors{};

[[noreturn]] void raise_status(const Status& st) {
  PyObject* cls = g_errors[static_cast<size_t>(st.code())];
  if (!cls) cls = g_errors[static_cast<size_t>(StatusCode::UNKNOWN)];
  PyErr_SetString(cls, st.message().c_str());
  throw py::error_already_set();
}

void throw_if_error(const Status& st) {
  if (!st.is_ok()) raise_status(st);
}

// A pinned Py_buffer: the exporter's memory stays valid until release().
// Must be destroyed with the GIL held.
struct PinnedBuffer {
  Py_buffer view{};
  bool held = false;
  explicit PinnedBuffer(py::handle obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) throw py::error_already_set();
    held = true;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() {
    if (held) PyBuffer_Release(&view);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(view.buf); }
  size_t size() const { return static_cast<size_t>(view.len); }
};

// A parsed ModelInferRequest that views the caller's bytes. Python keeps this
// object alive while the job runs (it is the job's keepalive).
class KServeRequest {
 public:
  explicit KServeRequest(py::handle buffer) : buf_(buffer), job_(std::make_unique<InferJob>()) {
    Status st;
    {
      py::gil_scoped_release release;
      st = parse_kserve_request(buf_.data(), buf_.size(), job_.get());
    }
    throw_if_error(st);
    model_name_ = job_->model_name;
    model_version_ = job_->model_version;
    id_ = job_->id;
    for (const auto& in : job_->inputs) addresses_.push_back(reinterpret_cast<uintptr_t>(in.data));
  }
  std::unique_ptr<InferJob> take() {
    if (!job_) throw std::runtime_error("request already submitted");
    return std::move(job_);
  }
  const std::string& model_name() const { return model_name_; }
  const std::string& model_version() const { return model_version_; }
  const std::string& id() const { return id_; }
  uintptr_t buffer_address() const { return reinterpret_cast<uintptr_t>(buf_.data()); }
  size_t buffer_size() const { return buf_.size(); }
  const std::vector<uintptr_t>& input_addresses() const { return addresses_; }

 private:
  PinnedBuffer buf_;
  std::unique_ptr<InferJob> job_;
  std::string model_name_, model_version_, id_;
  std::vector<uintptr_t> addresses_;
};

// Keeps the buffers of a submit_tensors() call pinned until completion.
struct BufferSet {
  BufferSet() = default;
  BufferSet(const BufferSet&) = delete;
  BufferSet& operator=(const BufferSet&) = delete;
  std::vector<std::unique_ptr<PinnedBuffer>> buffers;
};

py::dtype numpy_dtype(DataType dt) {
  switch (dt) {
    case DataType::BOOL: return py::dtype("bool");
    case DataType::UINT8: return py::dtype("uint8");
    case DataType::UINT16: return py::dtype("uint16");
    case DataType::UINT32: return py::dtype("uint32");
    case DataType::UINT64: return py::dtype("uint64");
    case DataType::INT8: return py::dtype("int8");
    case DataType::INT16: return py::dtype("int16");
    case DataType::INT32: return py::dtype("int32");
    case DataType::INT64: return py::dtype("int64");
    case DataType::FP16: return py::dtype("float16");
    case DataType::BF16: return py::dtype("uint16");  // numpy has no bfloat16: raw bits
    case DataType::FP32: return py::dtype("float32");
    case DataType::FP64: return py::dtype("float64");
    default: return py::dtype("object");
  }
}

// Zero-copy out: the array's base owns a handle to the ov::Tensor.
py::object tensor_to_python(const OutputTensor& o) {
  std::vector<py::ssize_t> shape(o.shape.begin(), o.shape.end());
  if (o.dtype == DataType::BYTES) {
    py::list items;
    const std::string* s = o.tensor.data<std::string>();
    for (size_t i = 0; i < o.tensor.get_size(); ++i) items.append(py::bytes(s[i]));
    return std::move(items);
  }
  auto* keep = new ov::Tensor(o.tensor);
  py::capsule owner(keep, [](void* p) { delete static_cast<ov::Tensor*>(p); });
  py::array arr(numpy_dtype(o.dtype), shape, keep->data(), owner);
  // Read-only: the consumer must not write into what the server may share.
  arr.attr("flags").attr("writeable") = false;
  return std::move(arr);
}

py::list shape_list(const ov::PartialShape& ps) {
  py::list out;
  if (ps.rank().is_dynamic()) return out;
  for (const auto& d : ps) out.append(d.is_static() ? d.get_length() : -1);
  return out;
}

py::list bounds_list(const ov::PartialShape& ps) {
  py::list out;
  if (ps.rank().is_dynamic()) return out;
  for (const auto& d : ps) out.append(py::make_tuple(d.get_min_length(), d.get_max_length()));
  return out;
}

py::list tensor_infos(const std::vector<TensorInfo>& infos) {
  py::list out;
  for (const auto& t : infos)
    out.append(py::make_tuple(t.name, std::string(datatype_info(t.dtype).kserve_name), shape_list(t.shape),
                              t.shape.rank().is_dynamic(), bounds_list(t.shape)));
  return out;
}

ov::AnyMap to_any_map(const py::dict& d) {
  ov::AnyMap m;
  for (auto item : d) {
    std::string key = py::str(item.first);
    py::handle v = item.second;
    if (py::isinstance<py::bool_>(v)) m[key] = std::string(v.cast<bool>() ? "YES" : "NO");
    else m[key] = std::string(py::str(v));
  }
  return m;
}

class PyServable {
 public:
  PyServable(ov::Core& core, std::string model_path, std::string device, py::dict plugin_config, int nireq,
             std::shared_ptr<CompletionQueue> queue, std::map<std::string, std::string> shapes,
             std::string batch_size, bool echo) {
    ServableOptions o;
    o.model_path = std::move(model_path);
    o.device = std::move(device);
    o.plugin_config = to_any_map(plugin_config);
    o.nireq = nireq;
    o.shapes = std::move(shapes);
    o.batch_size = std::move(batch_size);
    o.echo = echo;
    Status st;
    {
      py::gil_scoped_release release;
      st = Servable::create(core, o, std::move(queue), &impl_);
    }
    throw_if_error(st);
  }

  void submit_job(std::unique_ptr<InferJob> job, py::handle keepalive, py::handle context) {
    job->keepalive = keepalive.ptr();
    job->context = context.ptr();
    Py_INCREF(keepalive.ptr());
    Py_INCREF(context.ptr());
    Status st;
    {
      py::gil_scoped_release release;
      st = impl_->submit(std::move(job));
    }
    if (!st.is_ok()) {
      Py_DECREF(keepalive.ptr());
      Py_DECREF(context.ptr());
      raise_status(st);
    }
  }

  void submit_kserve(py::object req_obj, const std::string& version, py::object context) {
    KServeRequest& req = req_obj.cast<KServeRequest&>();
    std::unique_ptr<InferJob> job = req.take();
    job->model_version = version;
    job->mode = ResponseMode::KSERVE_PROTO;
    submit_job(std::move(job), req_obj, context);
  }

  // inputs: [(name, datatype, shape, data)], data = buffer, or list of bytes for BYTES.
  void submit_tensors(py::list inputs, py::object outputs, py::object context) {
    auto job = std::make_unique<InferJob>();
    job->mode = ResponseMode::TENSORS;
    auto holder = std::make_unique<BufferSet>();
    for (auto item : inputs) {
      py::tuple t = item.cast<py::tuple>();
      if (t.size() != 4) throw py::value_error("input must be (name, datatype, shape, data)");
      InputTensor in;
      in.name = t[0].cast<std::string>();
      in.datatype_name = t[1].cast<std::string>();
      in.dtype = datatype_from_name(in.datatype_name);
      if (in.dtype == DataType::INVALID)
        raise_status(invalid_argument("Invalid input precision - unsupported datatype '" + in.datatype_name +
                                      "'; input name: " + in.name));
      in.shape = t[2].cast<std::vector<int64_t>>();
      py::handle data = t[3];
      if (in.dtype == DataType::BYTES && py::isinstance<py::list>(data)) {
        for (auto e : data.cast<py::list>()) in.strings.push_back(e.cast<std::string>());
      } else {
        auto pb = std::make_unique<PinnedBuffer>(data);
        if (in.dtype == DataType::BYTES) {
          throw_if_error(split_bytes_elements(pb->data(), pb->size(), &in.strings, in.name));
        } else {
          in.data = pb->data();
          in.size = pb->size();
        }
        holder->buffers.push_back(std::move(pb));
      }
      job->inputs.push_back(std::move(in));
    }
    if (!outputs.is_none())
      for (auto o : outputs.cast<py::list>()) job->requested_outputs.push_back(o.cast<std::string>());
    py::object keep = py::cast(holder.release(), py::return_value_policy::take_ownership);
    submit_job(std::move(job), keep, context);
  }

  Servable& impl() { return *impl_; }

 private:
  std::unique_ptr<Servable> impl_;
};

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
    py::object payload;
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
    out.append(py::make_tuple(context, static_cast<int>(c.status.code()), c.status.message(), payload,
                              c.infer_us, c.wait_us));
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
  const std::array<std::pair<StatusCode, const char*>, 11> names{{
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

  py::class_<ov::Core>(m, "Core")
      .def(py::init([] { return std::make_unique<ov::Core>(); }))
      .def("set_property", [](ov::Core& c, const std::string& device, py::dict cfg) {
        auto m = to_any_map(cfg);
        py::gil_scoped_release release;
        if (device.empty()) c.set_property(m); else c.set_property(device, m);
      }, "Sets core properties (e.g. CACHE_DIR). Releases the GIL.");

  py::class_<CompletionQueue, std::shared_ptr<CompletionQueue>>(m, "CompletionQueue")
      .def(py::init<>())
      .def("fileno", &CompletionQueue::fd)
      .def("drain", &drain,
           "Takes every finished job: [(context, code, message, payload, infer_us, wait_us)]. "
           "payload is bytes (KServe response) or [(name, datatype, shape, ndarray|list[bytes])].");

  py::class_<KServeRequest>(m, "KServeRequest")
      .def_property_readonly("model_name", &KServeRequest::model_name)
      .def_property_readonly("model_version", &KServeRequest::model_version)
      .def_property_readonly("id", &KServeRequest::id)
      .def_property_readonly("buffer_address", &KServeRequest::buffer_address)
      .def_property_readonly("buffer_size", &KServeRequest::buffer_size)
      .def_property_readonly("input_addresses", &KServeRequest::input_addresses,
                             "Where each input's data starts (0 for BYTES): proves zero-copy in tests.");
  m.def("parse_kserve_request", [](py::handle buf) { return std::make_unique<KServeRequest>(buf); },
        py::arg("buffer"),
        "Parses serialized ModelInferRequest bytes without copying tensor data. Releases the GIL while parsing.");

  py::class_<BufferSet>(m, "_BufferSet");

  py::class_<PyServable>(m, "Servable")
      .def(py::init<ov::Core&, std::string, std::string, py::dict, int, std::shared_ptr<CompletionQueue>,
                    std::map<std::string, std::string>, std::string, bool>(),
           py::arg("core"), py::arg("model_path"), py::arg("device") = "CPU", py::arg("plugin_config") = py::dict(),
           py::arg("nireq") = 0, py::arg("queue"), py::arg("shapes") = std::map<std::string, std::string>(),
           py::arg("batch_size") = "", py::arg("echo") = false,
           "Reads and compiles the model (blocking; releases the GIL).")
      .def_property_readonly("inputs", [](PyServable& s) { return tensor_infos(s.impl().inputs()); })
      .def_property_readonly("outputs", [](PyServable& s) { return tensor_infos(s.impl().outputs()); })
      .def_property_readonly("nireq", [](PyServable& s) { return s.impl().nireq(); })
      .def_property_readonly("streams", [](PyServable& s) { return s.impl().streams(); })
      .def_property_readonly("active", [](PyServable& s) { return s.impl().active(); })
      .def_property_readonly("queued", [](PyServable& s) { return s.impl().queued(); })
      .def("submit_kserve", &PyServable::submit_kserve, py::arg("request"), py::arg("version"), py::arg("context"),
           "Starts inference for a parsed request; the result arrives through the CompletionQueue with "
           "`context`. Raises on validation errors. Releases the GIL while starting.")
      .def("submit_tensors", &PyServable::submit_tensors, py::arg("inputs"), py::arg("outputs"), py::arg("context"),
           "Starts inference on [(name, datatype, shape, buffer)]; buffers are used in place (pinned until "
           "completion). Releases the GIL while starting.")
      .def("drain", [](PyServable& s) { py::gil_scoped_release r; s.impl().drain(); },
           "Blocks until nothing is queued or running. Releases the GIL.");
}

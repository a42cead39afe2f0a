// Shared by the binding translation units (module.cpp, register_*.cpp).
// Only native/bindings includes pybind11.
#pragma once
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/numpy.h>

#include <algorithm>
#include <atomic>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openvino/runtime/core.hpp>

#include "ovfast/clock.hpp"
#include "ovfast/completion.hpp"
#include "ovfast/codec/kserve.hpp"
#include "ovfast/exec/result_sink.hpp"
#include "ovfast/servable.hpp"

namespace ovfast::bindings {
namespace py = pybind11;

// Exception classes, registered once; handles cached (index = StatusCode).
extern std::array<PyObject*, 15> g_errors;

// Text that may quote client bytes (not necessarily UTF-8), as a Python str; invalid bytes become \xNN.
inline py::str lenient_str(const std::string& s) {
  PyObject* text = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "backslashreplace");
  if (!text) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(text);
}

[[noreturn]] inline void raise_status(const Status& st) {
  PyObject* cls = g_errors[static_cast<size_t>(st.code())];
  if (!cls) cls = g_errors[static_cast<size_t>(StatusCode::UNKNOWN)];
  // NOTE: a message may quote client bytes (a name that is not UTF-8): decode it
  // leniently, or PyErr_SetString would raise UnicodeDecodeError instead.
  py::str text = lenient_str(st.message());
  PyErr_SetObject(cls, text.ptr());
  throw py::error_already_set();
}

inline void throw_if_error(const Status& st) {
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

// Keeps the buffers of a submit_tensors() call pinned until completion, and
// the job's cancel flag (InferJob::cancelled) alive for as long: the object is
// the job's keepalive, released only when its completion is drained.
struct BufferSet {
  BufferSet() = default;
  BufferSet(const BufferSet&) = delete;
  BufferSet& operator=(const BufferSet&) = delete;
  std::vector<std::unique_ptr<PinnedBuffer>> buffers;
  // BYTES elements given as a list, packed as (uint32 length, bytes)* (each a stable buffer).
  std::vector<std::unique_ptr<std::string>> packed;
  std::atomic<bool> cancelled{false};
};

// A list of bytes (or str) -> one (uint32 LE length, bytes)* buffer, sized once: the
// elements stay packed until a validated job writes them where the model takes them.
inline std::unique_ptr<std::string> pack_bytes_list(const py::list& items) {
  std::vector<std::string_view> views;
  views.reserve(items.size());
  size_t total = 0;
  for (auto e : items) {
    views.push_back(e.cast<std::string_view>());
    if (views.back().size() > UINT32_MAX) throw py::value_error("a BYTES element is larger than 4 GiB");
    total += 4 + views.back().size();
  }
  auto out = std::make_unique<std::string>();
  out->reserve(total);
  for (std::string_view v : views) {
    const auto n = static_cast<uint32_t>(v.size());
    out->append(reinterpret_cast<const char*>(&n), 4);
    out->append(v.data(), v.size());
  }
  return out;
}

inline py::dtype numpy_dtype(DataType dt) {
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
inline py::object tensor_to_python(const OutputTensor& o) {
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

inline py::list shape_list(const ov::PartialShape& ps) {
  py::list out;
  if (ps.rank().is_dynamic()) return out;
  for (const auto& d : ps) out.append(d.is_static() ? d.get_length() : -1);
  return out;
}

inline py::list bounds_list(const ov::PartialShape& ps) {
  py::list out;
  if (ps.rank().is_dynamic()) return out;
  for (const auto& d : ps) out.append(py::make_tuple(d.get_min_length(), d.get_max_length()));
  return out;
}

inline py::list tensor_infos(const std::vector<TensorInfo>& infos) {
  py::list out;
  for (const auto& t : infos)
    out.append(py::make_tuple(t.name, std::string(datatype_info(t.dtype).kserve_name), shape_list(t.shape),
                              t.shape.rank().is_dynamic(), bounds_list(t.shape)));
  return out;
}

inline ov::AnyMap to_any_map(const py::dict& d) {
  ov::AnyMap m;
  for (auto item : d) {
    std::string key = py::str(item.first);
    py::handle v = item.second;
    if (py::isinstance<py::bool_>(v)) m[key] = std::string(v.cast<bool>() ? "YES" : "NO");
    else m[key] = std::string(py::str(v));
  }
  return m;
}

// Where a submitted job's result goes; one sink of each kind per servable, bound to its CompletionQueue.
enum class SinkKind { KSERVE, TFS, TENSORS };

class PyServable {
 public:
  PyServable(ov::Core& core, const ModelOptions& options, std::shared_ptr<CompletionQueue> queue,
             std::shared_ptr<ManualClock> clock) {
    Status st;
    std::unique_ptr<Servable> made;
    {
      py::gil_scoped_release release;
      st = Servable::create(core, options, std::move(clock), &made);
    }
    throw_if_error(st);
    impl_ = std::move(made);
    bind_sinks(queue);
  }

  // An already built servable (a pipeline, register_dag.cpp), answering through `queue`.
  PyServable(std::shared_ptr<Servable> made, const std::shared_ptr<CompletionQueue>& queue) : impl_(std::move(made)) {
    bind_sinks(queue);
  }

  void bind_sinks(const std::shared_ptr<CompletionQueue>& queue) {
    sinks_[static_cast<int>(SinkKind::KSERVE)] = make_kserve_sink(queue);
    sinks_[static_cast<int>(SinkKind::TFS)] = make_tfs_sink(queue);
    sinks_[static_cast<int>(SinkKind::TENSORS)] = make_tensor_sink(queue);
  }

  const std::shared_ptr<ResultSink>& sink(SinkKind kind) const { return sinks_[static_cast<int>(kind)]; }

  void submit_job(std::unique_ptr<InferJob> job, SinkKind kind, py::handle keepalive, py::handle context) {
    job->sink = sink(kind);
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

  // inputs: [(name, datatype, shape, data)], data = buffer, or list of bytes for BYTES.
  // route / received_ns: see InferJob::metrics_route / received_ns.
  // sequence: None, or (id: int | str, start, end) from KServe request parameters.
  // Returns the job's keepalive: its cancel() drops the job if it has not started.
  py::object submit_tensors(py::list inputs, py::object outputs, py::object context, int route = kNoRoute,
                            uint64_t received_ns = 0, py::object sequence = py::none()) {
    auto job = std::make_unique<InferJob>();
    job->metrics_route = route;
    job->received_ns = received_ns;
    if (!sequence.is_none()) {
      py::tuple t = sequence.cast<py::tuple>();
      if (t.size() != 3) throw py::value_error("sequence must be (id, start, end)");
      SequenceRequest& seq = job->sequence;
      seq.given = true;
      if (py::isinstance<py::str>(t[0])) seq.id_string = t[0].cast<std::string>();
      else seq.id = t[0].cast<uint64_t>();
      seq.start = t[1].cast<bool>();
      seq.end = t[2].cast<bool>();
    }
    auto holder = std::make_unique<BufferSet>();
    for (auto item : inputs) {
      py::tuple t = item.cast<py::tuple>();
      if (t.size() != 4 && t.size() != 5)
        throw py::value_error("input must be (name, datatype, shape, data[, typed])");
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
        const std::string& packed = *holder->packed.emplace_back(pack_bytes_list(data.cast<py::list>()));
        throw_if_error(BytesElements::prefixed(reinterpret_cast<const uint8_t*>(packed.data()), packed.size(),
                                               in.name, &in.bytes));
      } else {
        auto pb = std::make_unique<PinnedBuffer>(data);
        if (in.dtype == DataType::BYTES) {
          throw_if_error(BytesElements::prefixed(pb->data(), pb->size(), in.name, &in.bytes));
        } else {
          in.data = pb->data();
          in.size = pb->size();
        }
        holder->buffers.push_back(std::move(pb));
      }
      // typed: the values came as a list (JSON), so size errors are reported as value counts
      if (t.size() == 5 && t[4].cast<bool>() && in.dtype != DataType::BYTES) {
        in.has_typed_contents = true;
        in.typed_count = in.size / datatype_size(in.dtype);
      }
      job->inputs.push_back(std::move(in));
    }
    if (!outputs.is_none())
      for (auto o : outputs.cast<py::list>()) job->requested_outputs.push_back(o.cast<std::string>());
    job->cancelled = &holder->cancelled;
    py::object keep = py::cast(holder.release(), py::return_value_policy::take_ownership);
    submit_job(std::move(job), SinkKind::TENSORS, keep, context);
    return keep;
  }

  Servable& impl() { return *impl_; }
  // Shared with the native route table: a version stays alive while the
  // gRPC front-end holds it for a request, even after Python let go of it.
  const std::shared_ptr<Servable>& shared() const { return impl_; }

 private:
  std::shared_ptr<Servable> impl_;
  std::array<std::shared_ptr<ResultSink>, 3> sinks_;
};

// Defined in register_image.cpp.
void register_image(py::module_& m);

// A parsed request (KServe ModelInferRequest, TFS PredictRequest) that views
// the caller's bytes. Python keeps the object alive while its job runs (it
// becomes the job's keepalive), so the pinned buffer outlives every
// ov::Tensor that wraps it.
class ParsedRequest {
 public:
  std::unique_ptr<InferJob> take() {
    if (!job_) throw std::runtime_error("request already submitted");
    return std::move(job_);
  }
  // {input name: shape} while the job is not yet submitted ("auto" shapes need them first).
  py::dict input_shapes() const {
    if (!job_) throw std::runtime_error("request already submitted");
    py::dict out;
    for (const auto& in : job_->inputs) out[py::str(in.name)] = py::cast(in.shape);
    return out;
  }
  // The client went away: the job is dropped if it has not started (it keeps
  // this object alive until its completion is drained).
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  uintptr_t buffer_address() const { return reinterpret_cast<uintptr_t>(buf_.data()); }
  size_t buffer_size() const { return buf_.size(); }
  const std::vector<uintptr_t>& input_addresses() const { return addresses_; }

 protected:
  // The request's clock (request-time metrics) starts here, before parsing.
  explicit ParsedRequest(py::handle buffer) : buf_(buffer), job_(std::make_unique<InferJob>()) {
    job_->received_ns = now_ns();
    job_->cancelled = &cancelled_;
  }
  // Runs parse(data, size, job) with the GIL released; raises on error.
  template <typename Parse>
  void parse(Parse&& parse_fn) {
    Status st;
    {
      py::gil_scoped_release release;
      st = parse_fn(buf_.data(), buf_.size(), job_.get());
    }
    throw_if_error(st);
    for (const auto& in : job_->inputs) addresses_.push_back(reinterpret_cast<uintptr_t>(in.data));
  }

  PinnedBuffer buf_;
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<InferJob> job_;
  std::vector<uintptr_t> addresses_;
};

// Starts the job of a ParsedRequest held by `req_obj`; the response is
// serialized natively by the `kind` sink and arrives through the CompletionQueue.
inline void submit_parsed(PyServable& servable, py::object req_obj, ParsedRequest& req, const std::string& version,
                          py::object context, int route, SinkKind kind) {
  std::unique_ptr<InferJob> job = req.take();
  job->model_version = version;
  job->metrics_route = route;
  servable.submit_job(std::move(job), kind, req_obj, context);
}

}  // namespace ovfast::bindings

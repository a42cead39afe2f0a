// TensorFlow-Serving Predict bindings: parse PredictRequest bytes without
// copying tensor_content, submit them to a Servable with a natively
// serialized PredictResponse as the result.
#include "py_common.hpp"

#include <cstring>

#include "ovfast/tfs_codec.hpp"

namespace py = pybind11;

namespace ovfast::bindings {
namespace {

// A parsed PredictRequest viewing the caller's bytes. Python keeps this object
// alive while the job runs (it becomes the job's keepalive), so the pinned
// buffer outlives every ov::Tensor wrapping tensor_content.
class TfsRequest {
 public:
  explicit TfsRequest(py::handle buffer) : buf_(buffer), job_(std::make_unique<InferJob>()) {
    Status st;
    {
      py::gil_scoped_release release;
      st = parse_tfs_predict_request(buf_.data(), buf_.size(), &spec_, job_.get());
    }
    throw_if_error(st);
    for (const auto& in : job_->inputs) {
      addresses_.push_back(reinterpret_cast<uintptr_t>(in.data));
      names_.push_back(in.name);
    }
  }
  std::unique_ptr<InferJob> take() {
    if (!job_) throw std::runtime_error("request already submitted");
    return std::move(job_);
  }
  const TfsModelSpec& spec() const { return spec_; }
  uintptr_t buffer_address() const { return reinterpret_cast<uintptr_t>(buf_.data()); }
  size_t buffer_size() const { return buf_.size(); }
  const std::vector<uintptr_t>& input_addresses() const { return addresses_; }
  const std::vector<std::string>& input_names() const { return names_; }

 private:
  PinnedBuffer buf_;
  std::unique_ptr<InferJob> job_;
  TfsModelSpec spec_;
  std::vector<uintptr_t> addresses_;
  std::vector<std::string> names_;
};

void submit_tfs(PyServable& servable, py::object req_obj, const std::string& version, py::object context,
                int route) {
  TfsRequest& req = req_obj.cast<TfsRequest&>();
  std::unique_ptr<InferJob> job = req.take();
  job->model_version = version;
  job->metrics_route = route;
  job->mode = ResponseMode::TFS_PROTO;
  servable.submit_job(std::move(job), req_obj, context);
}

}  // namespace

void register_tfs(py::module_& m) {
  py::class_<TfsRequest>(m, "TfsPredictRequest")
      .def_property_readonly("model_name", [](const TfsRequest& r) { return r.spec().name; })
      .def_property_readonly("model_version", [](const TfsRequest& r) { return r.spec().version; },
                             "model_spec.version.value; 0 when absent (= default version).")
      .def_property_readonly("has_model_spec", [](const TfsRequest& r) { return r.spec().present; })
      .def_property_readonly("signature_name", [](const TfsRequest& r) { return r.spec().signature_name; })
      .def_property_readonly("buffer_address", &TfsRequest::buffer_address)
      .def_property_readonly("buffer_size", &TfsRequest::buffer_size)
      .def_property_readonly("input_names", &TfsRequest::input_names)
      .def_property_readonly("input_addresses", &TfsRequest::input_addresses,
                             "Where each input's data starts (0 for strings): proves zero-copy in tests.");
  m.def("parse_tfs_predict_request", [](py::handle buf) { return std::make_unique<TfsRequest>(buf); },
        py::arg("buffer"),
        "Parses serialized tensorflow.serving.PredictRequest bytes; tensor_content is viewed, not copied. "
        "Raises InvalidArgumentError on malformed data. Releases the GIL while parsing.");
  m.def("submit_tfs", &submit_tfs, py::arg("servable"), py::arg("request"), py::arg("version"), py::arg("context"),
        py::arg("route") = -1,
        "Starts inference for a parsed PredictRequest; the serialized PredictResponse arrives through the "
        "CompletionQueue with `context`. Raises on validation errors. `route` (metrics) counts the request "
        "natively. Releases the GIL while starting.");
  m.def("encode_tfs_response",
        [](const std::string& name, const std::string& version, py::list outputs) {
          // Test helper: [(name, datatype, shape, ndarray|list[bytes])] -> PredictResponse bytes.
          std::vector<OutputTensor> outs;
          for (auto item : outputs) {
            py::tuple t = item.cast<py::tuple>();
            OutputTensor o;
            o.name = t[0].cast<std::string>();
            o.dtype = datatype_from_name(t[1].cast<std::string>());
            o.shape = t[2].cast<std::vector<int64_t>>();
            ov::Shape shape(o.shape.begin(), o.shape.end());
            if (o.dtype == DataType::BYTES) {
              o.tensor = ov::Tensor(ov::element::string, shape);
              size_t k = 0;
              for (auto s : t[3].cast<py::list>()) o.tensor.data<std::string>()[k++] = s.cast<std::string>();
            } else {
              PinnedBuffer pb(t[3]);
              o.tensor = ov::Tensor(datatype_info(o.dtype).element, shape);
              if (pb.size() != o.tensor.get_byte_size()) throw py::value_error("buffer size does not match shape");
              std::memcpy(o.tensor.data(), pb.data(), pb.size());
            }
            outs.push_back(std::move(o));
          }
          return py::bytes(encode_tfs_response(name, version, outs));
        },
        py::arg("model_name"), py::arg("version"), py::arg("outputs"),
        "Serializes a PredictResponse (used by tests; the server encodes in Servable completions).");
}

}  // namespace ovfast::bindings

// TensorFlow-Serving Predict bindings: parse PredictRequest bytes without
// copying tensor_content, submit them to a Servable with a natively
// serialized PredictResponse as the result.
#include "py_common.hpp"

#include <cstring>

#include "ovfast/codec/tfs.hpp"

namespace py = pybind11;

namespace ovfast::bindings {
namespace {

// A parsed PredictRequest; the names and model_spec are kept for routing.
class TfsRequest : public ParsedRequest {
 public:
  explicit TfsRequest(py::handle buffer) : ParsedRequest(buffer) {
    parse([this](const uint8_t* data, size_t size, InferJob* job) {
      return parse_tfs_predict_request(data, size, &spec_, job);
    });
    for (const auto& in : job_->inputs) names_.push_back(in.name);
  }
  const TfsModelSpec& spec() const { return spec_; }
  const std::vector<std::string>& input_names() const { return names_; }

 private:
  TfsModelSpec spec_;
  std::vector<std::string> names_;
};

void submit_tfs(PyServable& servable, py::object req_obj, const std::string& version, py::object context,
                int route) {
  submit_parsed(servable, req_obj, req_obj.cast<TfsRequest&>(), version, context, route, SinkKind::TFS);
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
      .def_property_readonly("input_shapes", &TfsRequest::input_shapes,
                             "{input name: shape} as parsed; readable until the request is submitted.")
      .def_property_readonly("input_addresses", &TfsRequest::input_addresses,
                             "Where each input's data starts (0 for strings): proves zero-copy in tests.")
      .def("cancel", &TfsRequest::cancel, "The client went away: drops the job if it has not started.");
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

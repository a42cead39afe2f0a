// Python access to the native JPEG/PNG decoder: for tests (matching the
// server's pixels exactly) and benchmarks. The server itself decodes inside
// Servable::submit and never calls these.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "ovfast/codec/image.hpp"
#include "py_common.hpp"

namespace ovfast::bindings {

namespace {

ColorOrder color_order(const std::string& text) {
  ColorOrder order;
  if (!parse_color_order(text, &order)) throw py::value_error("color_format must be 'BGR' or 'RGB'");
  return order;
}

// The decoded bytes move into a capsule that owns them: no copy on the way out.
py::array owned_array(std::vector<uint8_t>&& bytes, DataType dt, const std::vector<py::ssize_t>& shape) {
  auto* keep = new std::vector<uint8_t>(std::move(bytes));
  py::capsule owner(keep, [](void* p) { delete static_cast<std::vector<uint8_t>*>(p); });
  return py::array(numpy_dtype(dt), shape, keep->data(), owner);
}

py::array decode_image_py(py::buffer data, const std::string& color_format) {
  const ColorOrder order = color_order(color_format);
  PinnedBuffer buf(data);
  DecodedImage img;
  Status st;
  {
    py::gil_scoped_release release;
    st = decode_image(buf.data(), buf.size(), order, &img);
  }
  throw_if_error(st);
  return owned_array(std::move(img.pixels), DataType::UINT8, {img.height, img.width, img.channels});
}

py::array decode_images_py(const std::vector<std::string>& images, const std::vector<int64_t>& shape,
                           const std::string& datatype, const std::string& color_format, int max_threads) {
  if (shape.size() != 4) throw py::value_error("shape must have 4 dimensions (N, H, W, C); -1 = dynamic");
  ImageBatchSpec spec;
  std::vector<ov::Dimension> dims;
  for (int64_t d : shape) dims.push_back(d < 0 ? ov::Dimension::dynamic() : ov::Dimension(d));
  spec.shape = ov::PartialShape(dims);
  spec.dtype = datatype_from_name(datatype);
  if (spec.dtype == DataType::INVALID) throw py::value_error("unknown datatype " + datatype);
  spec.order = color_order(color_format);
  spec.max_threads = max_threads;
  std::vector<uint8_t> out;
  Shape out_shape;
  Status st;
  {
    py::gil_scoped_release release;
    st = decode_image_batch(std::vector<std::string_view>(images.begin(), images.end()), spec, &out, &out_shape);
  }
  throw_if_error(st);
  return owned_array(std::move(out), spec.dtype, std::vector<py::ssize_t>(out_shape.begin(), out_shape.end()));
}

}  // namespace

void register_image(py::module_& m) {
  m.def("decode_image", &decode_image_py, py::arg("data"), py::arg("color_format") = "BGR",
        "Decodes one JPEG or PNG into a uint8 HWC array (channels 1, 3 or 4; colour in `color_format` "
        "order). Raises InvalidArgumentError for anything that is not a valid image. Releases the GIL.");
  m.def("decode_images", &decode_images_py, py::arg("images"), py::arg("shape"), py::arg("datatype") = "UINT8",
        py::arg("color_format") = "BGR", py::arg("max_threads") = 0,
        "Decodes a batch exactly as the server does for a model input of `shape` (NHWC, -1 = dynamic) and "
        "`datatype`: resize to H x W when needed, values 0..255 converted without scaling. Returns an "
        "[N, H, W, C] array. Releases the GIL.");
}

}  // namespace ovfast::bindings

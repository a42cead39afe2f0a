#include "dag_data.hpp"

#include <cstring>

#include "ovfast/dtype.hpp"

namespace ovfast::dag {
namespace {

struct Kept {
  ov::Tensor tensor;
  std::shared_ptr<void> owner;
};

}  // namespace

DagData from_request(const InputTensor& in) {
  DagData d;
  if (in.dtype == DataType::BYTES || in.dtype == DataType::INVALID) {
    d.raw = &in;
    return d;
  }
  ov::Shape shape;
  for (int64_t x : in.shape) shape.push_back(static_cast<size_t>(x));
  // NOTE: the request's bytes, read-only for every node (models bind them as inputs, libraries get const data).
  d.tensor = ov::Tensor(datatype_info(in.dtype).element, shape, const_cast<uint8_t*>(in.data));
  return d;
}

Status copy_out(const ov::Tensor& src, const std::string& name, DagData* out) {
  if (src.get_element_type() == ov::element::string)
    return {StatusCode::UNSUPPORTED, "Pipeline: string output " + name + " cannot pass between nodes"};
  ov::Tensor dst(src.get_element_type(), src.get_shape());
  if (src.get_byte_size()) std::memcpy(dst.data(), src.data(), src.get_byte_size());
  out->tensor = std::move(dst);
  out->owner.reset();
  out->raw = nullptr;
  return Status::ok();
}

std::shared_ptr<void> keep_alive(const DagData& parent) {
  return std::make_shared<Kept>(Kept{parent.tensor, parent.owner});
}

DagData shard(const DagData& parent, const std::shared_ptr<void>& keep, size_t i) {
  const ov::Shape& s = parent.tensor.get_shape();
  ov::Shape rest(s.begin() + 1, s.end());
  const size_t stride = s[0] ? parent.tensor.get_byte_size() / s[0] : 0;
  auto* base = static_cast<uint8_t*>(const_cast<void*>(static_cast<const void*>(parent.tensor.data())));
  DagData d;
  d.tensor = ov::Tensor(parent.tensor.get_element_type(), rest, base + i * stride);
  d.owner = keep;
  return d;
}

Status stack(const std::vector<DagData>& shards, const std::string& what, DagData* out) {
  if (shards.empty()) return internal_error("Pipeline: nothing to gather for " + what);
  for (const DagData& d : shards)
    if (d.raw) return {StatusCode::UNSUPPORTED, "Pipeline: encoded images cannot be gathered (" + what + ")"};
  const ov::Tensor& first = shards[0].tensor;
  for (const DagData& d : shards)
    if (d.tensor.get_shape() != first.get_shape() || d.tensor.get_element_type() != first.get_element_type())
      return invalid_argument("Pipeline: gathered shards of " + what + " have different shapes: " +
                              d.tensor.get_shape().to_string() + " and " + first.get_shape().to_string());
  ov::Shape shape{shards.size()};
  for (size_t x : first.get_shape()) shape.push_back(x);
  ov::Tensor dst(first.get_element_type(), shape);
  const size_t bytes = first.get_byte_size();
  auto* p = static_cast<uint8_t*>(dst.data());
  for (size_t i = 0; i < shards.size() && bytes; ++i) std::memcpy(p + i * bytes, shards[i].tensor.data(), bytes);
  out->tensor = std::move(dst);
  out->owner.reset();
  out->raw = nullptr;
  return Status::ok();
}

InputTensor as_input(const DagData& d, const std::string& name) {
  if (d.raw) {
    InputTensor in = *d.raw;  // encoded images: the strings are copied (the model node decodes them)
    in.name = name;
    return in;
  }
  InputTensor in;
  in.name = name;
  in.dtype = datatype_from_element(d.tensor.get_element_type());
  for (size_t x : d.tensor.get_shape()) in.shape.push_back(static_cast<int64_t>(x));
  in.data = static_cast<const uint8_t*>(d.tensor.data());
  in.size = d.tensor.get_byte_size();
  return in;
}

}  // namespace ovfast::dag

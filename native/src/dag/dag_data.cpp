#include "dag_data.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "ovfast/codec/image.hpp"
#include "ovfast/dtype.hpp"

namespace ovfast::dag {
namespace {

// Dense memory of our own for `shape` elements of `type`: `owner` frees it.
DagData owned(const ov::element::Type& type, const ov::Shape& shape) {
  DagData d;
  d.type = type;
  d.shape = shape;
  d.bytes = ov::shape_size(shape) * type.size();
  void* p = std::aligned_alloc(64, (d.bytes + 63) / 64 * 64 + 64);
  if (!p) throw std::bad_alloc();
  d.owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  d.data = static_cast<uint8_t*>(p);
  return d;
}

}  // namespace

bool has_images(const InferJob& job, const std::vector<DagImageInput>& plan) {
  for (const DagImageInput& p : plan)
    if (job.inputs[p.input].dtype == DataType::BYTES) return true;
  return false;
}

Status decode_images(InferJob& job, const std::vector<DagImageInput>& plan, const std::vector<TensorInfo>& infos) {
  for (const DagImageInput& p : plan) {
    InputTensor& in = job.inputs[p.input];
    if (in.dtype != DataType::BYTES) continue;
    OVF_RETURN_IF_ERROR(decode_image_input(in, p.shape, p.dtype, p.nhwc_ok, static_cast<ColorOrder>(p.order), in.name));
    if (p.demultiplexed) in.shape.insert(in.shape.begin() + 1, 1);  // each image one item: [N,1,H,W,C]
    OVF_RETURN_IF_ERROR(validate_input(in, infos[p.input]));
  }
  return Status::ok();
}

DagData from_request(const InputTensor& in) {
  DagData d;
  if (in.dtype == DataType::BYTES || in.dtype == DataType::INVALID) {
    d.raw = &in;
    return d;
  }
  d.type = datatype_info(in.dtype).element;
  for (int64_t x : in.shape) d.shape.push_back(static_cast<size_t>(x));
  // NOTE: the request's bytes, read-only for every node (models bind them as inputs, libraries get const data).
  d.data = const_cast<uint8_t*>(in.data);
  d.bytes = in.size;
  return d;
}

Status copy_out(const ov::Tensor& src, const std::string& name, DagData* out) {
  if (src.get_element_type() == ov::element::string)
    return {StatusCode::UNSUPPORTED, "Pipeline: string output " + name + " cannot pass between nodes"};
  *out = owned(src.get_element_type(), src.get_shape());
  if (out->bytes) std::memcpy(out->data, src.data(), out->bytes);
  return Status::ok();
}

DagData shard(const DagData& parent, size_t i) {
  DagData d;
  d.type = parent.type;
  d.shape.assign(parent.shape.begin() + 1, parent.shape.end());
  d.bytes = parent.shape[0] ? parent.bytes / parent.shape[0] : 0;
  d.data = parent.data + i * d.bytes;
  d.owner = parent.owner;
  return d;
}

Status stack(const std::vector<DagData>& shards, const std::string& what, DagData* out) {
  if (shards.empty()) return internal_error("Pipeline: nothing to gather for " + what);
  for (const DagData& d : shards)
    if (d.raw) return {StatusCode::UNSUPPORTED, "Pipeline: encoded images cannot be gathered (" + what + ")"};
  const DagData& first = shards[0];
  for (const DagData& d : shards)
    if (d.shape != first.shape || d.type != first.type)
      return invalid_argument("Gathered tensor shards dimensions are different - " + what + ": " +
                              d.shape.to_string() + " and " + first.shape.to_string());
  ov::Shape shape{shards.size()};
  shape.insert(shape.end(), first.shape.begin(), first.shape.end());
  *out = owned(first.type, shape);
  for (size_t i = 0; i < shards.size() && first.bytes; ++i)
    std::memcpy(out->data + i * first.bytes, shards[i].data, first.bytes);
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
  in.dtype = datatype_from_element(d.type);
  for (size_t x : d.shape) in.shape.push_back(static_cast<int64_t>(x));
  in.data = d.data;
  in.size = d.bytes;
  return in;
}

}  // namespace ovfast::dag

// ModelInstance::validate: a request against the model's signature.
#include <algorithm>
#include <limits>

#include "ovfast/model/model_instance.hpp"

namespace ovfast {
namespace {

std::string batch_text(const ov::Dimension& d) {
  std::string s = partial_shape_to_string(ov::PartialShape({d}));
  return s.substr(1, s.size() - 2);
}

Status check_shape(const InputTensor& in, const TensorInfo& info, const std::string& suffix) {
  for (int64_t d : in.shape)
    if (d < 0) return invalid_argument("Invalid input shape - negative dimension in " + shape_to_string(in.shape) + suffix);
  const ov::PartialShape& ps = info.shape;
  if (ps.rank().is_dynamic()) return Status::ok();
  if (in.shape.size() != ps.size())
    return invalid_argument("Invalid number of shape dimensions - Expected: " + partial_shape_to_string(ps) +
                            "; Actual: " + shape_to_string(in.shape) + suffix);
  for (size_t d = 0; d < ps.size(); ++d) {
    if (ps[d].compatible(ov::Dimension(in.shape[d]))) continue;
    if (d == 0)
      return invalid_argument("Invalid input batch size - Expected: " + batch_text(ps[0]) +
                              "; Actual: " + std::to_string(in.shape[0]) + suffix);
    return invalid_argument("Invalid input shape - Expected: " + partial_shape_to_string(ps) +
                            "; Actual: " + shape_to_string(in.shape) + suffix);
  }
  return Status::ok();
}

// What a shape claims a tensor could hold, zero dimensions counted as one: no real tensor
// comes near this, and no size computed from a shape under it can overflow.
constexpr uint64_t kMaxClaimedBytes = uint64_t{1} << 31;

Status check_contents(const InputTensor& in, const std::string& suffix) {
  // NOTE: [0, 2^62] holds no element, yet every size derived from it downstream (outputs,
  // strides, numpy) overflows; refused here before anything is computed from it.
  uint64_t claimed = std::max<size_t>(datatype_size(in.dtype), 1);
  for (int64_t d : in.shape) {
    if (d <= 0) continue;
    if (claimed > kMaxClaimedBytes / static_cast<uint64_t>(d))
      return invalid_argument("Invalid input shape - " + shape_to_string(in.shape) + " claims more than " +
                              std::to_string(kMaxClaimedBytes) + " bytes" + suffix);
    claimed *= static_cast<uint64_t>(d);
  }
  size_t count;
  if (!checked_count(in.shape, &count))
    return invalid_argument("Invalid input shape - too many elements in " + shape_to_string(in.shape) + suffix);
  auto values = [&](size_t got) {
    return invalid_argument("Invalid number of values in tensor proto container - Expected: " +
                            std::to_string(count) + " values; Actual: " + std::to_string(got) + " values" + suffix);
  };
  if (in.dtype == DataType::BYTES) {
    if (in.bytes.count() != count) return values(in.bytes.count());
  } else if (in.has_typed_contents) {
    if (in.typed_count != count) return values(in.typed_count);
  } else {
    const size_t elsize = datatype_size(in.dtype);
    if (count > std::numeric_limits<size_t>::max() / elsize || in.size != count * elsize)
      return invalid_argument("Invalid content size of tensor proto - Expected: " + std::to_string(count * elsize) +
                              " bytes; Actual: " + std::to_string(in.size) + " bytes" + suffix);
  }
  return Status::ok();
}

}  // namespace

Status validate_input(const InputTensor& in, const TensorInfo& info) {
  const std::string suffix = "; input name: " + info.name;
  if (in.dtype != info.dtype)
    return invalid_argument("Invalid input precision - Expected: " + std::string(datatype_info(info.dtype).kserve_name) +
                            "; Actual: " +
                            (in.datatype_name.empty() ? std::string(datatype_info(in.dtype).kserve_name)
                                                      : in.datatype_name) + suffix);
  OVF_RETURN_IF_ERROR(check_shape(in, info, suffix));
  return check_contents(in, suffix);
}

Status ModelInstance::validate(InferJob& job) const {
  if (job.inputs.size() != inputs_.size())
    return invalid_argument("Invalid number of inputs - Expected: " + std::to_string(inputs_.size()) +
                            "; Actual: " + std::to_string(job.inputs.size()));
  std::vector<InputTensor> ordered;
  ordered.reserve(inputs_.size());
  for (const TensorInfo& info : inputs_) {
    InputTensor* in = nullptr;
    for (auto& cand : job.inputs)
      if (cand.name == info.name) { in = &cand; break; }
    if (!in) return invalid_argument("Missing input with specific name - Required input: " + info.name);
    OVF_RETURN_IF_ERROR(validate_input(*in, info));
    ordered.push_back(std::move(*in));
  }
  job.inputs.swap(ordered);
  for (size_t k = 0; k < job.requested_outputs.size(); ++k) {
    const std::string& name = job.requested_outputs[k];
    if (output_index(name) < 0)
      return invalid_argument("Invalid output name - the model has no output named: " + name);
    for (size_t j = 0; j < k; ++j)
      if (job.requested_outputs[j] == name)
        return invalid_argument("Invalid outputs - output '" + name + "' is requested more than once");
  }
  return Status::ok();
}

}  // namespace ovfast

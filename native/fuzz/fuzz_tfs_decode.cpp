// libFuzzer entry: PredictRequest parsing must never crash, read out of
// bounds or throw, whatever the bytes; a success must yield tensors that lie
// inside the input buffer or in owned storage.
#include <cstdint>
#include <string_view>
#include <cstdlib>

#include "ovfast/codec/tfs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Tight limits on odd sizes, so the limit checks are reached as often as the parse past them.
  ovfast::DecodeLimits limits;
  if (size & 1) limits = {2, 2, 3, 2};
  ovfast::InferJob job;
  ovfast::TfsModelSpec spec;
  ovfast::Status st = ovfast::parse_tfs_predict_request(data, size, &spec, &job, limits);
  if (st.is_ok() && job.inputs.size() > limits.max_inputs) std::abort();
  for (const auto& in : job.inputs)
    if (in.shape.size() > limits.max_dims) std::abort();
  if (!st.is_ok()) {
    if (st.code() != ovfast::StatusCode::INVALID_ARGUMENT) std::abort();
    return 0;
  }
  for (const auto& in : job.inputs) {
    // string_val elements are located, not copied: each lies inside the request, as many as counted.
    size_t n = 0;
    in.bytes.for_each([&](std::string_view e) {
      ++n;
      const auto* p = reinterpret_cast<const uint8_t*>(e.data());
      if (!e.empty() && (p < data || p + e.size() > data + size)) std::abort();
    });
    if (n != in.bytes.count()) std::abort();
    if (!in.data) continue;
    const bool in_request = in.data >= data && in.data + in.size <= data + size;
    const bool in_owned = !in.owned.empty() && in.data == in.owned.data() && in.size == in.owned.size();
    if (!in_request && !in_owned) std::abort();
  }
  return 0;
}

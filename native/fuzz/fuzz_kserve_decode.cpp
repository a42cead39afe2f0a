// libFuzzer target for the KServe ModelInferRequest decoder.
//   cmake -S . -B build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DOVFAST_BUILD_FUZZERS=ON
//   ninja -C build/fuzz fuzz_kserve_decode && build/fuzz/native/fuzz_kserve_decode -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ovfast/codec/kserve.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Tight limits on odd sizes, so the limit checks are reached as often as the parse past them.
  ovfast::DecodeLimits limits;
  if (size & 1) limits = {2, 2, 3, 2};
  ovfast::InferJob job;
  ovfast::Status st = ovfast::parse_kserve_request(data, size, &job, limits);
  if (st.is_ok() && (job.inputs.size() > limits.max_inputs || job.requested_outputs.size() > limits.max_outputs))
    __builtin_trap();
  for (const auto& in : job.inputs)
    if (in.shape.size() > limits.max_dims) __builtin_trap();
  if (st.is_ok()) {
    // Every view must lie inside the input buffer.
    for (const auto& in : job.inputs) {
      if (in.data && in.owned.empty() && (in.data < data || in.data + in.size > data + size)) __builtin_trap();
      // BYTES elements are located, not copied: each lies inside the buffer, as many as counted.
      size_t n = 0;
      in.bytes.for_each([&](std::string_view e) {
        ++n;
        if (!e.empty() && (reinterpret_cast<const uint8_t*>(e.data()) < data ||
                           reinterpret_cast<const uint8_t*>(e.data()) + e.size() > data + size))
          __builtin_trap();
      });
      if (n != in.bytes.count()) __builtin_trap();
    }
  } else if (st.code() != ovfast::StatusCode::INVALID_ARGUMENT) {
    __builtin_trap();
  }
  return 0;
}

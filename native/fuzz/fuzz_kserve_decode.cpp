// libFuzzer target for the KServe ModelInferRequest decoder.
//   cmake -S . -B build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DOVFAST_BUILD_FUZZERS=ON
//   ninja -C build/fuzz fuzz_kserve_decode && build/fuzz/native/fuzz_kserve_decode -max_total_time=60
#include <cstddef>
#include <cstdint>

#include "ovfast/codec/kserve.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ovfast::InferJob job;
  ovfast::Status st = ovfast::parse_kserve_request(data, size, &job);
  if (st.is_ok()) {
    // Every view must lie inside the input buffer.
    for (const auto& in : job.inputs) {
      if (in.data && in.owned.empty() && (in.data < data || in.data + in.size > data + size)) __builtin_trap();
    }
  } else if (st.code() != ovfast::StatusCode::INVALID_ARGUMENT) {
    __builtin_trap();
  }
  return 0;
}

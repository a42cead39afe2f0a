// libFuzzer target for the JPEG/PNG decoder (native/src/codec/image.cpp).
// Build: cmake -DOVFAST_BUILD_FUZZERS=ON with clang, or see tests/native/test_image_fuzz.py.
// The contract under test: any bytes either decode or yield INVALID_ARGUMENT;
// nothing crashes, exits, leaks or reads out of bounds (ASan/UBSan).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ovfast/codec/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ovfast;
  const bool order_rgb = size > 0 && (data[size - 1] & 1);
  DecodedImage img;
  Status st = decode_image(data, size, order_rgb ? ColorOrder::RGB : ColorOrder::BGR, &img);
  if (!st.is_ok() && st.code() != StatusCode::INVALID_ARGUMENT) std::abort();
  if (st.is_ok() && img.pixels.size() != static_cast<size_t>(img.height) * img.width * img.channels) std::abort();

  // The batch path: a fixed target (resize + f32 conversion) and a dynamic one.
  std::vector<std::string_view> images{std::string_view(reinterpret_cast<const char*>(data), size)};
  for (const char* shape : {"[1,16,24,3]", "[?,?,?,?]"}) {
    ImageBatchSpec spec;
    spec.shape = ov::PartialShape(std::string(shape));
    spec.dtype = DataType::FP32;
    spec.max_threads = 1;
    std::vector<uint8_t> out;
    Shape out_shape;
    Status bst = decode_image_batch(images, spec, &out, &out_shape);
    if (!bst.is_ok() && bst.code() != StatusCode::INVALID_ARGUMENT) std::abort();
  }
  return 0;
}

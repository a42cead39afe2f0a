// JPEG/PNG request elements -> one NHWC batch tensor (OVMS "binary inputs").
//
// Decoding is native (libjpeg-turbo, libpng), never touches Python and may be
// called with the GIL released from any thread. Corrupt, truncated or hostile
// bytes come back as INVALID_ARGUMENT: both libraries report errors through
// error managers that longjmp back into this module, so nothing ever calls
// exit() or unwinds a C++ exception through C frames.
//
// Ownership: the functions read the caller's bytes only for the duration of
// the call and keep no pointer to them. Output buffers are the caller's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <openvino/core/partial_shape.hpp>

#include "ovfast/dtype.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

// Channel order of colour images after decoding. OVMS (OpenCV) yields BGR;
// a model configured with "color_format": "RGB" gets RGB.
enum class ColorOrder : int { BGR = 0, RGB = 1 };

// Parses "BGR"/"RGB" (case-insensitive); "" is BGR. False for anything else.
bool parse_color_order(const std::string& text, ColorOrder* out);

// One decoded image: HWC, 8 bits per sample, rows packed.
struct DecodedImage {
  int height = 0;
  int width = 0;
  int channels = 0;  // 1 (gray), 3 (colour) or 4 (colour + alpha)
  std::vector<uint8_t> pixels;
};

// Decodes one JPEG or PNG (detected from its signature). Gray stays 1 channel,
// colour is 3 (in `order`), images with alpha/transparency are 4; 16-bit PNG
// samples are reduced to 8 bits, palettes are expanded.
Status decode_image(const uint8_t* data, size_t size, ColorOrder order, DecodedImage* out);

// What the model input wants (its NHWC partial shape and element type).
struct ImageBatchSpec {
  ov::PartialShape shape;        // rank 4, NHWC
  DataType dtype = DataType::UINT8;
  ColorOrder order = ColorOrder::BGR;
  int max_threads = 0;           // decode workers per batch; 0 = hardware concurrency
};

// Decodes `images` (views of the request) into one [N,H,W,C] buffer of spec.dtype (values 0..255,
// no rescaling). H/W come from the spec when static, from the first image when
// dynamic (clamped to a range). Images of another size are resized (bilinear)
// when H and W are not fully dynamic; otherwise all must share one size. The
// images of a batch are decoded in parallel, each straight into its slice.
// `out` is resized to the exact byte size; `out_shape` gets [N,H,W,C].
Status decode_image_batch(const std::vector<std::string_view>& images, const ImageBatchSpec& spec,
                          std::vector<uint8_t>* out, Shape* out_shape);

// Hook for request validation: when `in` carries BYTES for a rank-4 non-string
// model input, replaces its contents with the decoded batch (dtype, shape,
// owned bytes) so the ordinary checks and zero-copy binding apply unchanged.
// `input_name` only decorates error messages. `nhwc_ok` is false when the
// model input's layout is not N..HWC (OVMS: UNSUPPORTED_LAYOUT).
Status decode_image_input(InputTensor& in, const ov::PartialShape& model_shape, DataType model_dtype,
                          bool nhwc_ok, ColorOrder order, const std::string& input_name);

}  // namespace ovfast

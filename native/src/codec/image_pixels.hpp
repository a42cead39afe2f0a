// Pixel operations behind codec/image.cpp: resizing decoded images and
// converting their 8-bit samples to a model's element type. Internal to the
// image codec. Pure functions over caller-owned buffers; any thread.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ovfast/dtype.hpp"

namespace ovfast::image {

// Bilinear resize (OpenCV INTER_LINEAR geometry), HWC u8 [sh, sw, c] -> HWC u8 [dh, dw, c].
void resize_bilinear(const uint8_t* src, int sh, int sw, uint8_t* dst, int dh, int dw, int c);
// n u8 samples -> n elements of `dt` at dst, values unchanged (INT8 saturates at 127).
void convert_samples(const uint8_t* src, size_t n, DataType dt, uint8_t* dst);
// The element types decoded images can be converted to.
bool image_dtype_supported(DataType dt);

}  // namespace ovfast::image

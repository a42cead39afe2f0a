#include "image_pixels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <openvino/core/type/float16.hpp>

namespace ovfast::image {
namespace {

template <typename T>
void convert_u8(const uint8_t* src, size_t n, uint8_t* dst_bytes) {
  T* dst = reinterpret_cast<T*>(dst_bytes);
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
}

}  // namespace

// Bilinear resize with pixel centres at +0.5 (OpenCV INTER_LINEAR geometry),
// 11-bit fixed-point weights, HWC u8 -> HWC u8.
void resize_bilinear(const uint8_t* src, int sh, int sw, uint8_t* dst, int dh, int dw, int c) {
  constexpr int kBits = 11;
  constexpr int kOne = 1 << kBits;
  std::vector<int> xo0(dw), xo1(dw), wx(dw);
  const double sx_scale = static_cast<double>(sw) / dw;
  for (int x = 0; x < dw; ++x) {
    double fx = (x + 0.5) * sx_scale - 0.5;
    int i = static_cast<int>(std::floor(fx));
    double f = fx - i;
    if (i < 0) { i = 0; f = 0; }
    if (i >= sw - 1) { i = sw - 1; f = 0; }
    xo0[x] = i * c;
    xo1[x] = std::min(i + 1, sw - 1) * c;
    wx[x] = static_cast<int>(f * kOne + 0.5);
  }
  const double sy_scale = static_cast<double>(sh) / dh;
  const size_t src_stride = static_cast<size_t>(sw) * c;
  for (int y = 0; y < dh; ++y) {
    double fy = (y + 0.5) * sy_scale - 0.5;
    int j = static_cast<int>(std::floor(fy));
    double f = fy - j;
    if (j < 0) { j = 0; f = 0; }
    if (j >= sh - 1) { j = sh - 1; f = 0; }
    const int wy = static_cast<int>(f * kOne + 0.5);
    const uint8_t* r0 = src + static_cast<size_t>(j) * src_stride;
    const uint8_t* r1 = src + static_cast<size_t>(std::min(j + 1, sh - 1)) * src_stride;
    uint8_t* out = dst + static_cast<size_t>(y) * dw * c;
    for (int x = 0; x < dw; ++x) {
      const int a = xo0[x], b = xo1[x], w = wx[x];
      for (int k = 0; k < c; ++k) {
        const int top = r0[a + k] * (kOne - w) + r0[b + k] * w;
        const int bot = r1[a + k] * (kOne - w) + r1[b + k] * w;
        *out++ = static_cast<uint8_t>((top * (kOne - wy) + bot * wy + (1 << (2 * kBits - 1))) >> (2 * kBits));
      }
    }
  }
}

// u8 samples -> the model's element type, values unchanged (INT8 saturates).
void convert_samples(const uint8_t* src, size_t n, DataType dt, uint8_t* dst) {
  switch (dt) {
    case DataType::UINT8: std::memcpy(dst, src, n); break;
    case DataType::FP32: convert_u8<float>(src, n, dst); break;
    case DataType::FP64: convert_u8<double>(src, n, dst); break;
    case DataType::INT32: convert_u8<int32_t>(src, n, dst); break;
    case DataType::INT16: convert_u8<int16_t>(src, n, dst); break;
    case DataType::UINT16: convert_u8<uint16_t>(src, n, dst); break;
    case DataType::INT64: convert_u8<int64_t>(src, n, dst); break;
    case DataType::FP16: {
      auto* out = reinterpret_cast<ov::float16*>(dst);
      for (size_t i = 0; i < n; ++i) out[i] = ov::float16(static_cast<float>(src[i]));
      break;
    }
    case DataType::INT8: {
      auto* out = reinterpret_cast<int8_t*>(dst);
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(std::min<int>(src[i], 127));
      break;
    }
    default: break;  // rejected before decoding
  }
}

bool image_dtype_supported(DataType dt) {
  switch (dt) {
    case DataType::UINT8: case DataType::FP32: case DataType::FP64: case DataType::FP16:
    case DataType::INT32: case DataType::INT16: case DataType::UINT16: case DataType::INT8:
    case DataType::INT64:
      return true;
    default:
      return false;
  }
}

}  // namespace ovfast::image

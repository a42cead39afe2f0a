// Reading pixels of an image input (U8 or FP32, NHWC or NCHW, batch 1) and bilinear resizing of a region of
// it into planar float output, for the crop and text-box nodes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "node_common.hpp"

namespace ovfast_nodes {

enum class Layout { NCHW = 0, NHWC = 1 };

// The image format a node takes, from its params: image_layout NCHW|NHWC, image_precision FP32|U8, and
// optionally image_height / image_width (0 or absent: any size). A fixed size is declared in the node's inputs
// info, so a pipeline input feeding both this node and a static model has one metadata.
struct ImageFormat {
    Layout layout = Layout::NCHW;
    CustomNodeTensorPrecision precision = FP32;
    long height = 0, width = 0;

    bool parse(const CustomNodeParam* params, int count, Layout default_layout,
               CustomNodeTensorPrecision default_precision) {
        int layout_index = 0, precision_index = 0;
        if (!choice_param(params, count, "image_layout", {"NCHW", "NHWC"}, static_cast<int>(default_layout),
                          &layout_index) ||
            !choice_param(params, count, "image_precision", {"FP32", "U8"}, default_precision == U8 ? 1 : 0,
                          &precision_index) ||
            !int_param(params, count, "image_height", 0, 0, 1 << 16, &height) ||
            !int_param(params, count, "image_width", 0, 0, 1 << 16, &width))
            return false;
        layout = static_cast<Layout>(layout_index);
        precision = precision_index == 1 ? U8 : FP32;
        return true;
    }

    // Declared dims: [1, C, H, W] or [1, H, W, C] (0 = any size).
    std::vector<uint64_t> dims(uint64_t channels) const {
        const auto h = static_cast<uint64_t>(height), w = static_cast<uint64_t>(width);
        return layout == Layout::NCHW ? std::vector<uint64_t>{1, channels, h, w}
                                      : std::vector<uint64_t>{1, h, w, channels};
    }
};

class ImageView {
public:
    // Checks the named input against the format: rank 4, batch 1, `channels` channels, non-empty, the fixed
    // height and width if the format has them.
    int bind(const CustomNodeTensor* inputs, int count, const char* name, const ImageFormat& format,
             uint64_t channels) {
        const CustomNodeTensor* t = nullptr;
        if (int rc = check_input(inputs, count, name, format.precision, 4, &t); rc != kOk) return rc;
        const bool nhwc = format.layout == Layout::NHWC;
        const uint64_t c = nhwc ? t->dims[3] : t->dims[1];
        height_ = nhwc ? t->dims[1] : t->dims[2];
        width_ = nhwc ? t->dims[2] : t->dims[3];
        if (t->dims[0] != 1 || c != channels || height_ == 0 || width_ == 0) return kWrongShape;
        if ((format.height > 0 && height_ != static_cast<uint64_t>(format.height)) ||
            (format.width > 0 && width_ != static_cast<uint64_t>(format.width)))
            return kWrongShape;
        data_ = t->data;
        u8_ = format.precision == U8;
        nhwc_ = nhwc;
        channels_ = c;
        return kOk;
    }

    uint64_t height() const { return height_; }
    uint64_t width() const { return width_; }
    uint64_t channels() const { return channels_; }

    float at(uint64_t c, uint64_t y, uint64_t x) const {
        const uint64_t i = nhwc_ ? (y * width_ + x) * channels_ + c : (c * height_ + y) * width_ + x;
        return u8_ ? static_cast<float>(data_[i]) : reinterpret_cast<const float*>(data_)[i];
    }

    // Resizes the region [x0, x0 + w) x [y0, y0 + h) (pixels, inside the image) to out_w x out_h with
    // half-pixel-centre bilinear sampling, writing value * scale + bias into `out`: channel-planar, each plane
    // `plane_width` floats wide (>= out_w), out_h rows.
    void resize_region(double x0, double y0, double w, double h, float* out, uint64_t out_w, uint64_t out_h,
                       uint64_t plane_width, float scale, float bias) const {
        const double sx = w / static_cast<double>(out_w), sy = h / static_cast<double>(out_h);
        for (uint64_t oy = 0; oy < out_h; ++oy) {
            const double fy = std::clamp(y0 + (oy + 0.5) * sy - 0.5, 0.0, static_cast<double>(height_ - 1));
            const uint64_t y_lo = static_cast<uint64_t>(fy), y_hi = std::min(y_lo + 1, height_ - 1);
            const float wy = static_cast<float>(fy - static_cast<double>(y_lo));
            for (uint64_t ox = 0; ox < out_w; ++ox) {
                const double fx = std::clamp(x0 + (ox + 0.5) * sx - 0.5, 0.0, static_cast<double>(width_ - 1));
                const uint64_t x_lo = static_cast<uint64_t>(fx), x_hi = std::min(x_lo + 1, width_ - 1);
                const float wx = static_cast<float>(fx - static_cast<double>(x_lo));
                for (uint64_t c = 0; c < channels_; ++c) {
                    const float top = at(c, y_lo, x_lo) * (1 - wx) + at(c, y_lo, x_hi) * wx;
                    const float bottom = at(c, y_hi, x_lo) * (1 - wx) + at(c, y_hi, x_hi) * wx;
                    out[(c * out_h + oy) * plane_width + ox] = (top * (1 - wy) + bottom * wy) * scale + bias;
                }
            }
        }
    }

private:
    const uint8_t* data_ = nullptr;
    bool u8_ = false, nhwc_ = false;
    uint64_t height_ = 0, width_ = 0, channels_ = 0;
};

}  // namespace ovfast_nodes

// libovfast_crop_boxes.so — cuts the boxes a detector found out of the image, each resized to one size, as a
// demultiplexer (the pipeline sets demultiply_count: -1 on this node, so each crop flows on alone).
//
// inputs  image        [1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC), FP32 or U8 (params)
//         boxes        FP32 [1, N, 5]: x_min, y_min, x_max, y_max (fractions of the image, 0..1), confidence
// outputs crops        FP32 [M, 1, 3, target_image_height, target_image_width] (NCHW, pixel values as in the image)
//         coordinates  FP32 [M, 1, 4]  the kept boxes, clamped to 0..1
//         confidences  FP32 [M, 1, 1]
//         where M boxes have confidence >= confidence_threshold and a non-empty area, in input order.
// params  target_image_width, target_image_height (default 224), confidence_threshold (default 0.5),
//         max_boxes (default 100: more kept boxes fail the request), image_layout (NCHW), image_precision (FP32),
//         image_height, image_width (default 0: any size; set them when a static model shares the image input)
#include "image.hpp"

using namespace ovfast_nodes;

namespace {

struct Config {
    long width = 224, height = 224, max_boxes = 100;
    double confidence_threshold = 0.5;
    ImageFormat image;

    static bool parse(const CustomNodeParam* params, int count, Config* out) {
        return int_param(params, count, "target_image_width", 224, 1, 8192, &out->width) &&
               int_param(params, count, "target_image_height", 224, 1, 8192, &out->height) &&
               int_param(params, count, "max_boxes", 100, 1, 10000, &out->max_boxes) &&
               float_param(params, count, "confidence_threshold", 0.5, -1e30, 1e30, &out->confidence_threshold) &&
               out->image.parse(params, count, Layout::NCHW, FP32);
    }
};

struct Box {
    float x0, y0, x1, y1, confidence;
};

int run(const CustomNodeTensor* inputs, int inputs_count, CustomNodeTensor** outputs, int* outputs_count,
        const Config& config) {
    ImageView image;
    if (int rc = image.bind(inputs, inputs_count, "image", config.image, 3); rc != kOk) return rc;
    const CustomNodeTensor* boxes = nullptr;
    if (int rc = check_input(inputs, inputs_count, "boxes", FP32, 3, &boxes); rc != kOk) return rc;
    if (boxes->dims[0] != 1 || boxes->dims[2] != 5) return kWrongShape;

    std::vector<Box> kept;
    const auto* raw = reinterpret_cast<const float*>(boxes->data);
    for (uint64_t i = 0; i < boxes->dims[1]; ++i) {
        const float* b = raw + i * 5;
        if (!(b[4] >= config.confidence_threshold)) continue;  // NaN confidence: dropped
        Box box{std::clamp(b[0], 0.0f, 1.0f), std::clamp(b[1], 0.0f, 1.0f), std::clamp(b[2], 0.0f, 1.0f),
                std::clamp(b[3], 0.0f, 1.0f), b[4]};
        if (!(box.x1 > box.x0 && box.y1 > box.y0)) continue;
        if (kept.size() == static_cast<size_t>(config.max_boxes)) return kTooManyResults;
        kept.push_back(box);
    }

    const uint64_t m = kept.size(), w = static_cast<uint64_t>(config.width), h = static_cast<uint64_t>(config.height);
    Outputs out;
    auto* crops = reinterpret_cast<float*>(out.add("crops", FP32, {m, 1, 3, h, w}));
    auto* coordinates = reinterpret_cast<float*>(out.add("coordinates", FP32, {m, 1, 4}));
    auto* confidences = reinterpret_cast<float*>(out.add("confidences", FP32, {m, 1, 1}));
    if (crops == nullptr || coordinates == nullptr || confidences == nullptr) return kNoMemory;
    const double iw = static_cast<double>(image.width()), ih = static_cast<double>(image.height());
    for (uint64_t i = 0; i < m; ++i) {
        const Box& b = kept[i];
        image.resize_region(b.x0 * iw, b.y0 * ih, (b.x1 - b.x0) * iw, (b.y1 - b.y0) * ih, crops + i * 3 * h * w, w, h,
                            w, 1.0f, 0.0f);
        coordinates[i * 4 + 0] = b.x0;
        coordinates[i * 4 + 1] = b.y0;
        coordinates[i * 4 + 2] = b.x1;
        coordinates[i * 4 + 3] = b.y1;
        confidences[i] = b.confidence;
    }
    return out.commit(outputs, outputs_count);
}

std::vector<TensorSpec> input_specs(const Config& config) {
    return {{"image", config.image.precision, config.image.dims(3)}, {"boxes", FP32, {1, 0, 5}}};
}

std::vector<TensorSpec> output_specs(const Config& config) {
    const uint64_t w = static_cast<uint64_t>(config.width), h = static_cast<uint64_t>(config.height);
    return {{"crops", FP32, {0, 1, 3, h, w}}, {"coordinates", FP32, {0, 1, 4}}, {"confidences", FP32, {0, 1, 1}}};
}

}  // namespace

OVFAST_NODE_DEFINE_ABI(Config, run, input_specs, output_specs)


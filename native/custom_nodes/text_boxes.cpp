// libovfast_text_boxes.so — the step between a DB text detector (PP-OCR det) and a text recogniser: finds the
// text lines in the detector's probability map and cuts each out of the image as the recogniser's input, as a
// demultiplexer (the pipeline sets demultiply_count: -1 on this node; gather after the recogniser).
//
// inputs  image             [1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC), FP32 or U8 (params), pixel values 0..255
//         probability_map   FP32 [1, 1, h, w] (the detector's output; scaled to the image when the sizes differ)
// outputs text_images       FP32 [N, 1, 3, text_height, text_width]: each line resized to text_height keeping
//                           its aspect ratio (at most text_width wide), scaled to -1..1 (v / 127.5 - 1), and
//                           padded with zeros on the right, as PP-OCR's recogniser expects
//         text_coordinates  I32 [N, 1, 4]: x, y, width, height of each line in the image
//         Lines are ordered top to bottom, then left to right within a line of text (10 px tolerance).
// Detection, as DB post-processing with axis-aligned boxes: pixels above `threshold` form 8-connected
// components; a component is kept when its box's shorter side is >= min_size and its mean probability is >=
// box_threshold; its box is grown on every side by area * unclip_ratio / perimeter.
// params  threshold (0.3), box_threshold (0.5), unclip_ratio (1.6), min_size (3), max_boxes (100: more lines
//         fail the request), text_height (48), text_width (320), image_layout (NCHW), image_precision (FP32),
//         image_height, image_width (default 0: any size; set them when a static model shares the image input)
#include "image.hpp"

using namespace ovfast_nodes;

namespace {

struct Config {
    double threshold = 0.3, box_threshold = 0.5, unclip_ratio = 1.6;
    long min_size = 3, max_boxes = 100, text_height = 48, text_width = 320;
    ImageFormat image;

    static bool parse(const CustomNodeParam* params, int count, Config* out) {
        return float_param(params, count, "threshold", 0.3, 0.0, 1.0, &out->threshold) &&
               float_param(params, count, "box_threshold", 0.5, 0.0, 1.0, &out->box_threshold) &&
               float_param(params, count, "unclip_ratio", 1.6, 0.0, 100.0, &out->unclip_ratio) &&
               int_param(params, count, "min_size", 3, 1, 1 << 20, &out->min_size) &&
               int_param(params, count, "max_boxes", 100, 1, 10000, &out->max_boxes) &&
               int_param(params, count, "text_height", 48, 1, 1024, &out->text_height) &&
               int_param(params, count, "text_width", 320, 1, 8192, &out->text_width) &&
               out->image.parse(params, count, Layout::NCHW, FP32);
    }
};

struct Line {
    int32_t x, y, width, height;  // in image pixels
};

// Components of the thresholded map that pass the size and score tests, as boxes in map pixels
// [x0, x1) x [y0, y1), already grown by the unclip distance.
struct MapBox {
    double x0, y0, x1, y1;
};

std::vector<MapBox> find_boxes(const float* prob, uint64_t h, uint64_t w, const Config& config) {
    std::vector<MapBox> boxes;
    std::vector<uint8_t> seen(h * w, 0);
    std::vector<uint64_t> stack;
    const float threshold = static_cast<float>(config.threshold);
    for (uint64_t start = 0; start < h * w; ++start) {
        if (seen[start] || !(prob[start] > threshold)) continue;
        uint64_t min_x = w, max_x = 0, min_y = h, max_y = 0, pixels = 0;
        double sum = 0;
        seen[start] = 1;
        stack.assign(1, start);
        while (!stack.empty()) {
            const uint64_t p = stack.back();
            stack.pop_back();
            const uint64_t y = p / w, x = p % w;
            min_x = std::min(min_x, x), max_x = std::max(max_x, x);
            min_y = std::min(min_y, y), max_y = std::max(max_y, y);
            sum += prob[p];
            ++pixels;
            for (uint64_t ny = y == 0 ? 0 : y - 1; ny <= std::min(y + 1, h - 1); ++ny)
                for (uint64_t nx = x == 0 ? 0 : x - 1; nx <= std::min(x + 1, w - 1); ++nx) {
                    const uint64_t q = ny * w + nx;
                    if (!seen[q] && prob[q] > threshold) {
                        seen[q] = 1;
                        stack.push_back(q);
                    }
                }
        }
        const double bw = static_cast<double>(max_x - min_x + 1), bh = static_cast<double>(max_y - min_y + 1);
        if (std::min(bw, bh) < static_cast<double>(config.min_size)) continue;
        if (sum / static_cast<double>(pixels) < config.box_threshold) continue;
        const double grow = bw * bh * config.unclip_ratio / (2 * (bw + bh));
        if (std::min(bw, bh) + 2 * grow < static_cast<double>(config.min_size + 2)) continue;
        boxes.push_back(MapBox{static_cast<double>(min_x) - grow, static_cast<double>(min_y) - grow,
                               static_cast<double>(max_x + 1) + grow, static_cast<double>(max_y + 1) + grow});
    }
    return boxes;
}

// Map boxes to image pixels (clamped, rounded outwards), in reading order.
std::vector<Line> to_lines(const std::vector<MapBox>& boxes, double sx, double sy, uint64_t width, uint64_t height) {
    std::vector<Line> lines;
    for (const MapBox& b : boxes) {
        const double x0 = std::clamp(std::floor(b.x0 * sx), 0.0, static_cast<double>(width));
        const double y0 = std::clamp(std::floor(b.y0 * sy), 0.0, static_cast<double>(height));
        const double x1 = std::clamp(std::ceil(b.x1 * sx), 0.0, static_cast<double>(width));
        const double y1 = std::clamp(std::ceil(b.y1 * sy), 0.0, static_cast<double>(height));
        if (x1 <= x0 || y1 <= y0) continue;
        lines.push_back(Line{static_cast<int32_t>(x0), static_cast<int32_t>(y0), static_cast<int32_t>(x1 - x0),
                             static_cast<int32_t>(y1 - y0)});
    }
    std::sort(lines.begin(), lines.end(),
              [](const Line& a, const Line& b) { return a.y != b.y ? a.y < b.y : a.x < b.x; });
    for (size_t i = 0; i + 1 < lines.size(); ++i)  // same text row (within 10 px): left to right
        for (size_t j = i + 1; j > 0; --j) {
            if (std::abs(lines[j].y - lines[j - 1].y) < 10 && lines[j].x < lines[j - 1].x)
                std::swap(lines[j], lines[j - 1]);
            else
                break;
        }
    return lines;
}

int run(const CustomNodeTensor* inputs, int inputs_count, CustomNodeTensor** outputs, int* outputs_count,
        const Config& config) {
    ImageView image;
    if (int rc = image.bind(inputs, inputs_count, "image", config.image, 3); rc != kOk) return rc;
    const CustomNodeTensor* map = nullptr;
    if (int rc = check_input(inputs, inputs_count, "probability_map", FP32, 4, &map); rc != kOk) return rc;
    const uint64_t mh = map->dims[2], mw = map->dims[3];
    if (map->dims[0] != 1 || map->dims[1] != 1 || mh == 0 || mw == 0) return kWrongShape;

    const std::vector<MapBox> boxes = find_boxes(reinterpret_cast<const float*>(map->data), mh, mw, config);
    const std::vector<Line> lines =
        to_lines(boxes, static_cast<double>(image.width()) / static_cast<double>(mw),
                 static_cast<double>(image.height()) / static_cast<double>(mh), image.width(), image.height());
    if (lines.size() > static_cast<size_t>(config.max_boxes)) return kTooManyResults;

    const uint64_t n = lines.size(), th = static_cast<uint64_t>(config.text_height),
                   tw = static_cast<uint64_t>(config.text_width);
    Outputs out;
    auto* images = reinterpret_cast<float*>(out.add("text_images", FP32, {n, 1, 3, th, tw}));
    auto* coordinates = reinterpret_cast<int32_t*>(out.add("text_coordinates", I32, {n, 1, 4}));
    if (images == nullptr || coordinates == nullptr) return kNoMemory;
    for (uint64_t i = 0; i < n; ++i) {
        const Line& line = lines[i];
        const double ratio = static_cast<double>(line.width) / static_cast<double>(line.height);
        const uint64_t resized_w =
            std::clamp<uint64_t>(static_cast<uint64_t>(std::ceil(static_cast<double>(th) * ratio)), 1, tw);
        image.resize_region(line.x, line.y, line.width, line.height, images + i * 3 * th * tw, resized_w, th, tw,
                            1.0f / 127.5f, -1.0f);
        int32_t* c = coordinates + i * 4;
        c[0] = line.x, c[1] = line.y, c[2] = line.width, c[3] = line.height;
    }
    return out.commit(outputs, outputs_count);
}

std::vector<TensorSpec> input_specs(const Config& config) {
    return {{"image", config.image.precision, config.image.dims(3)}, {"probability_map", FP32, {1, 1, 0, 0}}};
}

std::vector<TensorSpec> output_specs(const Config& config) {
    const uint64_t th = static_cast<uint64_t>(config.text_height), tw = static_cast<uint64_t>(config.text_width);
    return {{"text_images", FP32, {0, 1, 3, th, tw}}, {"text_coordinates", I32, {0, 1, 4}}};
}

}  // namespace

OVFAST_NODE_DEFINE_ABI(Config, run, input_specs, output_specs)

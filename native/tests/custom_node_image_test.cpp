// The image nodes through the C ABI: crop_boxes (detector boxes -> equally sized crops) and text_boxes (a DB
// probability map -> text lines ready for PP-OCR's recogniser), on images and maps built here.
#include <cmath>

#include "custom_node_helpers.hpp"

namespace ovfast::test {
namespace {

// 1x3x4x8 NCHW FP32 image: pixel (c, y, x) = 100c + 8y + x; the same pixels as NHWC U8.
InputTensor planar_image() {
    std::vector<float> v;
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 8; ++x) v.push_back(static_cast<float>(100 * c + 8 * y + x));
    return InputTensor::of<float>("image", v, {1, 3, 4, 8}, FP32);
}

InputTensor interleaved_image() {
    std::vector<uint8_t> v;
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 8; ++x)
            for (int c = 0; c < 3; ++c) v.push_back(static_cast<uint8_t>(100 * c + 8 * y + x));
    return InputTensor::of<uint8_t>("image", v, {1, 4, 8, 3}, U8);
}

InputTensor boxes(const std::vector<float>& values) {
    return InputTensor::of<float>("boxes", values, {1, values.size() / 5, 5}, FP32);
}

// The whole image at its own size, and its bottom-right quarter at its own size: both exact copies; a box
// under the confidence threshold and an empty one are dropped.
const std::vector<float> kFourBoxes = {0, 0, 1, 1, 0.9f,  0.5f, 0.5f, 1, 1, 0.6f,
                                       0, 0, 1, 1, 0.3f,  0.2f, 0.2f, 0.2f, 0.8f, 0.9f};

void expect_crops(const NodeRun& run) {
    ASSERT_EQ(run.rc, 0);
    const auto& crops = run["crops"];
    ASSERT_EQ(crops.dims, (std::vector<uint64_t>{2, 1, 3, 4, 8}));
    const std::vector<float> v = crops.values<float>();
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 8; ++x) {
                EXPECT_FLOAT_EQ(v[(c * 4 + y) * 8 + x], 100 * c + 8 * y + x);
                // the quarter (4 x 2 pixels) resized to 8 x 4: pixel centres map to ((x + 0.5) / 2 - 0.5) + 4
                const double sx = std::clamp(4 + (x + 0.5) / 2 - 0.5, 0.0, 7.0), sy = std::clamp(2 + (y + 0.5) / 2 - 0.5, 0.0, 3.0);
                EXPECT_NEAR(v[96 + (c * 4 + y) * 8 + x], 100 * c + 8 * sy + sx, 1e-4) << c << " " << y << " " << x;
            }
    EXPECT_EQ(run["coordinates"].values<float>(), (std::vector<float>{0, 0, 1, 1, 0.5f, 0.5f, 1, 1}));
    EXPECT_EQ(run["confidences"].values<float>(), (std::vector<float>{0.9f, 0.6f}));
    EXPECT_EQ(run["confidences"].dims, (std::vector<uint64_t>{2, 1, 1}));
}

TEST(CropBoxes, CropsKeptBoxesInOrder) {
    NodeLibrary lib("crop_boxes");
    ASSERT_TRUE(lib.complete());
    const std::vector<CustomNodeParam> size = {{"target_image_width", "8"}, {"target_image_height", "4"}};
    expect_crops(execute(lib, {planar_image(), boxes(kFourBoxes)}, size));
    std::vector<CustomNodeParam> u8 = size;
    u8.push_back({"image_layout", "NHWC"});
    u8.push_back({"image_precision", "U8"});
    expect_crops(execute(lib, {interleaved_image(), boxes(kFourBoxes)}, u8));
}

TEST(CropBoxes, NoBoxKeptIsAnEmptyResult) {
    NodeLibrary lib("crop_boxes");
    ASSERT_TRUE(lib.complete());
    NodeRun run = execute(lib, {planar_image(), boxes({0, 0, 1, 1, 0.1f})});
    ASSERT_EQ(run.rc, 0);
    EXPECT_EQ(run["crops"].dims, (std::vector<uint64_t>{0, 1, 3, 224, 224}));
    EXPECT_EQ(run["coordinates"].dims, (std::vector<uint64_t>{0, 1, 4}));
    EXPECT_EQ(execute(lib, {planar_image(), InputTensor::of<float>("boxes", {}, {1, 0, 5}, FP32)}).rc, 0);
}

TEST(CropBoxes, FixedImageSizeIsDeclaredAndChecked) {
    NodeLibrary lib("crop_boxes");
    ASSERT_TRUE(lib.complete());
    const std::vector<CustomNodeParam> fixed = {{"image_height", "4"}, {"image_width", "8"}};
    EXPECT_EQ(query_info(lib, lib.getInputsInfo, fixed)[0], (Info{"image", {1, 3, 4, 8}, FP32}));
    EXPECT_EQ(execute(lib, {planar_image(), boxes(kFourBoxes)}, fixed).rc, 0);
    const std::vector<CustomNodeParam> other = {{"image_height", "4"}, {"image_width", "16"}};
    EXPECT_NE(execute(lib, {planar_image(), boxes(kFourBoxes)}, other).rc, 0);
    NodeLibrary text("text_boxes");
    ASSERT_TRUE(text.complete());
    EXPECT_EQ(query_info(text, text.getInputsInfo,
                         {{"image_layout", "NHWC"}, {"image_precision", "U8"}, {"image_height", "32"}})[0],
              (Info{"image", {1, 32, 0, 3}, U8}));
}

TEST(CropBoxes, WrongInputsGiveErrorCodes) {
    NodeLibrary lib("crop_boxes");
    ASSERT_TRUE(lib.complete());
    EXPECT_NE(execute(lib, {planar_image(), boxes(kFourBoxes)}, {{"max_boxes", "1"}}).rc, 0);  // too many
    EXPECT_NE(execute(lib, {planar_image()}).rc, 0);                                            // no boxes
    EXPECT_NE(execute(lib, {planar_image(), InputTensor::of<float>("boxes", {0, 0, 1, 1}, {1, 1, 4}, FP32)}).rc, 0);
    EXPECT_NE(execute(lib, {interleaved_image(), boxes(kFourBoxes)}).rc, 0);  // U8 where FP32 is declared
    auto two = InputTensor::of<float>("image", std::vector<float>(2 * 3 * 4), {2, 3, 2, 2}, FP32);
    EXPECT_NE(execute(lib, {two, boxes(kFourBoxes)}).rc, 0);  // batch 2
    auto gray = InputTensor::of<float>("image", std::vector<float>(16), {1, 1, 4, 4}, FP32);
    EXPECT_NE(execute(lib, {gray, boxes(kFourBoxes)}).rc, 0);  // one channel
}

// A 1x1xHxW map of zeros with rectangles [y0, y1) x [x0, x1) set to a probability.
struct Rect {
    int y0, y1, x0, x1;
    float p;
};

InputTensor probability_map(uint64_t h, uint64_t w, const std::vector<Rect>& rects) {
    std::vector<float> v(h * w, 0.0f);
    for (const Rect& r : rects)
        for (int y = r.y0; y < r.y1; ++y)
            for (int x = r.x0; x < r.x1; ++x) v[y * w + x] = r.p;
    return InputTensor::of<float>("probability_map", v, {1, 1, h, w}, FP32);
}

InputTensor white_image(uint64_t h, uint64_t w) {
    return InputTensor::of<float>("image", std::vector<float>(3 * h * w, 255.0f), {1, 3, h, w}, FP32);
}

// Two lines side by side and one below; a component under box_threshold and one under min_size are dropped.
// Boxes grow by area * 1.6 / perimeter: 40x8 by 5.33, 30x8 by 5.05, 26x8 by 4.89 (then rounded outwards).
const std::vector<Rect> kLines = {{5, 13, 60, 90, 0.9f}, {5, 13, 10, 50, 0.9f}, {25, 33, 5, 31, 0.9f},
                                  {25, 33, 60, 81, 0.4f}, {36, 38, 95, 97, 0.9f}};

TEST(TextBoxes, FindsLinesInReadingOrder) {
    NodeLibrary lib("text_boxes");
    ASSERT_TRUE(lib.complete());
    NodeRun run = execute(lib, {white_image(40, 100), probability_map(40, 100, kLines)}, {{"text_width", "160"}});
    ASSERT_EQ(run.rc, 0);
    EXPECT_EQ(run["text_coordinates"].dims, (std::vector<uint64_t>{3, 1, 4}));
    EXPECT_EQ(run["text_coordinates"].values<int32_t>(),
              (std::vector<int32_t>{4, 0, 52, 19, 54, 0, 42, 19, 0, 20, 36, 18}));
    const auto& images = run["text_images"];
    ASSERT_EQ(images.dims, (std::vector<uint64_t>{3, 1, 3, 48, 160}));
    // Each line is 48 high and ceil(48 * w / h) wide, white (255 -> 1.0), then zero padding.
    const std::vector<float> v = images.values<float>();
    const uint64_t widths[3] = {132, 107, 96};
    for (uint64_t i = 0; i < 3; ++i)
        for (uint64_t c = 0; c < 3; ++c)
            for (uint64_t y = 0; y < 48; y += 47)
                for (uint64_t x = 0; x < 160; ++x)
                    ASSERT_FLOAT_EQ(v[((i * 3 + c) * 48 + y) * 160 + x], x < widths[i] ? 1.0f : 0.0f)
                        << i << " " << c << " " << y << " " << x;
}

TEST(TextBoxes, MapSmallerThanImageScalesBoxes) {
    NodeLibrary lib("text_boxes");
    ASSERT_TRUE(lib.complete());
    NodeRun run = execute(lib, {white_image(40, 100), probability_map(20, 50, {{2, 6, 5, 25, 0.8f}})});
    ASSERT_EQ(run.rc, 0);
    EXPECT_EQ(run["text_coordinates"].values<int32_t>(), (std::vector<int32_t>{4, 0, 52, 18}));
}

TEST(TextBoxes, KeepsChannelsAndScalesPixels) {
    NodeLibrary lib("text_boxes");
    ASSERT_TRUE(lib.complete());
    std::vector<uint8_t> pixels;
    for (int i = 0; i < 40 * 100; ++i) pixels.insert(pixels.end(), {255, 0, 51});
    auto image = InputTensor::of<uint8_t>("image", pixels, {1, 40, 100, 3}, U8);
    NodeRun run = execute(lib, {image, probability_map(40, 100, {{5, 13, 10, 50, 0.9f}})},
                      {{"image_layout", "NHWC"}, {"image_precision", "U8"}});
    ASSERT_EQ(run.rc, 0);
    const std::vector<float> v = run["text_images"].values<float>();
    const float expected[3] = {1.0f, -1.0f, 51 / 127.5f - 1};
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(v[(c * 48 + 10) * 320 + 20], expected[c], 1e-6);
}

TEST(TextBoxes, NoTextIsAnEmptyResult) {
    NodeLibrary lib("text_boxes");
    ASSERT_TRUE(lib.complete());
    NodeRun run = execute(lib, {white_image(32, 32), probability_map(32, 32, {{4, 20, 4, 20, 0.2f}})});
    ASSERT_EQ(run.rc, 0);
    EXPECT_EQ(run["text_images"].dims, (std::vector<uint64_t>{0, 1, 3, 48, 320}));
    EXPECT_EQ(run["text_coordinates"].dims, (std::vector<uint64_t>{0, 1, 4}));
}

TEST(TextBoxes, WrongInputsGiveErrorCodes) {
    NodeLibrary lib("text_boxes");
    ASSERT_TRUE(lib.complete());
    EXPECT_NE(execute(lib, {white_image(40, 100), probability_map(40, 100, kLines)}, {{"max_boxes", "2"}}).rc, 0);
    EXPECT_NE(execute(lib, {probability_map(40, 100, kLines)}).rc, 0);  // no image
    auto two_maps = InputTensor::of<float>("probability_map", std::vector<float>(2 * 16), {1, 2, 4, 4}, FP32);
    EXPECT_NE(execute(lib, {white_image(4, 4), two_maps}).rc, 0);
    auto int_map = InputTensor::of<int32_t>("probability_map", std::vector<int32_t>(16), {1, 1, 4, 4}, I32);
    EXPECT_NE(execute(lib, {white_image(4, 4), int_map}).rc, 0);
    auto empty_map = InputTensor::of<float>("probability_map", {}, {1, 1, 0, 4}, FP32);
    EXPECT_NE(execute(lib, {white_image(4, 4), empty_map}).rc, 0);
    auto short_map = probability_map(4, 4, {});
    short_map.bytes.resize(8);
    EXPECT_NE(execute(lib, {white_image(4, 4), short_map}).rc, 0);
}

}  // namespace
}  // namespace ovfast::test

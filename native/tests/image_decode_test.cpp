// JPEG/PNG decoding (ovfast/codec/image.hpp). Inputs are encoded here with
// libpng/libjpeg from known pixels; broken inputs must come back as
// INVALID_ARGUMENT (the libraries' longjmp error paths), never a crash.
#include <gtest/gtest.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

#include "codec_helpers.hpp"
#include "ovfast/codec/image.hpp"

namespace ovfast {
namespace {

using Pixels = std::vector<uint8_t>;

// ---- encoders (test inputs) ------------------------------------------------------

extern "C" void append_png(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
extern "C" void flush_png(png_structp) {}

// `pixels`: rows of w * channels samples, each `depth / 8` bytes big-endian.
std::string encode_png(int w, int h, int color_type, int depth, const Pixels& pixels,
                       const std::vector<png_color>& palette = {}) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    ADD_FAILURE() << "libpng could not encode the test image";
    return {};
  }
  png_set_write_fn(png, &out, append_png, flush_png);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), depth, color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  png_write_info(png, info);
  const size_t stride = pixels.size() / static_cast<size_t>(h);
  for (int y = 0; y < h; ++y) png_write_row(png, pixels.data() + static_cast<size_t>(y) * stride);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string encode_jpeg(int w, int h, int channels, const Pixels& pixels, int quality) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &mem, &size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels.data()) + static_cast<size_t>(cinfo.next_scanline) * w * channels;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<const char*>(mem), size);
  std::free(mem);
  return out;
}

// A w x h RGB image whose samples all differ from their neighbours.
Pixels gradient_rgb(int w, int h) {
  Pixels p;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      p.push_back(static_cast<uint8_t>(10 * x + y));
      p.push_back(static_cast<uint8_t>(100 + 7 * y));
      p.push_back(static_cast<uint8_t>(250 - 3 * x - 5 * y));
    }
  return p;
}

Pixels swap_rb(Pixels p, int channels) {
  for (size_t i = 0; i + 2 < p.size(); i += static_cast<size_t>(channels)) std::swap(p[i], p[i + 2]);
  return p;
}

Status decode(const std::string& bytes, ColorOrder order, DecodedImage* img) {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), order, img);
}

// ---- single images --------------------------------------------------------------

TEST(DecodeImage, PngIsLosslessInBothChannelOrders) {
  const Pixels rgb = gradient_rgb(7, 5);
  const std::string png = encode_png(7, 5, PNG_COLOR_TYPE_RGB, 8, rgb);
  DecodedImage img;
  ASSERT_TRUE(decode(png, ColorOrder::RGB, &img).is_ok());
  EXPECT_EQ(img.height, 5);
  EXPECT_EQ(img.width, 7);
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, rgb);
  DecodedImage bgr;
  ASSERT_TRUE(decode(png, ColorOrder::BGR, &bgr).is_ok());
  EXPECT_EQ(bgr.pixels, swap_rb(rgb, 3));
}

TEST(DecodeImage, PngPixelFormatsNormaliseToEightBits) {
  const Pixels gray = {0, 50, 100, 150, 200, 255};
  DecodedImage img;
  ASSERT_TRUE(decode(encode_png(3, 2, PNG_COLOR_TYPE_GRAY, 8, gray), ColorOrder::BGR, &img).is_ok());
  EXPECT_EQ(img.channels, 1);
  EXPECT_EQ(img.pixels, gray);

  // 16-bit samples (big-endian in the file) are scaled to 8 bits: v * 257 -> v
  Pixels wide;
  for (uint8_t v : gray) { wide.push_back(v); wide.push_back(v); }
  ASSERT_TRUE(decode(encode_png(3, 2, PNG_COLOR_TYPE_GRAY, 16, wide), ColorOrder::BGR, &img).is_ok());
  EXPECT_EQ(img.pixels, gray);

  // RGBA keeps alpha last and swaps colour only
  const Pixels rgba = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(decode(encode_png(2, 1, PNG_COLOR_TYPE_RGBA, 8, rgba), ColorOrder::BGR, &img).is_ok());
  EXPECT_EQ(img.channels, 4);
  EXPECT_EQ(img.pixels, (Pixels{3, 2, 1, 4, 7, 6, 5, 8}));

  // gray + alpha becomes colour + alpha
  ASSERT_TRUE(decode(encode_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {9, 200, 30, 100}), ColorOrder::RGB, &img).is_ok());
  EXPECT_EQ(img.channels, 4);
  EXPECT_EQ(img.pixels, (Pixels{9, 9, 9, 200, 30, 30, 30, 100}));

  // palette indices are expanded to colours
  const std::vector<png_color> palette = {{10, 20, 30}, {40, 50, 60}};
  ASSERT_TRUE(decode(encode_png(3, 1, PNG_COLOR_TYPE_PALETTE, 8, {1, 0, 1}, palette), ColorOrder::RGB, &img).is_ok());
  EXPECT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, (Pixels{40, 50, 60, 10, 20, 30, 40, 50, 60}));
}

TEST(DecodeImage, JpegOfAFlatColourDecodesToThatColour) {
  const int w = 16, h = 8;
  Pixels flat;
  for (int i = 0; i < w * h; ++i) flat.insert(flat.end(), {200, 100, 50});
  DecodedImage img;
  ASSERT_TRUE(decode(encode_jpeg(w, h, 3, flat, 100), ColorOrder::BGR, &img).is_ok());
  EXPECT_EQ(img.height, h);
  EXPECT_EQ(img.width, w);
  ASSERT_EQ(img.channels, 3);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {  // lossy: within a couple of levels
    ASSERT_NEAR(img.pixels[i], 50, 3) << i;  // BGR
    ASSERT_NEAR(img.pixels[i + 1], 100, 3) << i;
    ASSERT_NEAR(img.pixels[i + 2], 200, 3) << i;
  }
  ASSERT_TRUE(decode(encode_jpeg(w, h, 1, Pixels(w * h, 77), 100), ColorOrder::BGR, &img).is_ok());
  EXPECT_EQ(img.channels, 1);
}

void expect_invalid(const std::string& bytes, const std::string& reason) {
  DecodedImage img;
  Status st = decode(bytes, ColorOrder::BGR, &img);
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT) << reason;
  EXPECT_NE(st.message().find("Image parsing failed"), std::string::npos) << reason << ": " << st.message();
}

TEST(DecodeImage, BrokenInputIsInvalidArgument) {
  const std::string png = encode_png(7, 5, PNG_COLOR_TYPE_RGB, 8, gradient_rgb(7, 5));
  const std::string jpeg = encode_jpeg(16, 8, 3, gradient_rgb(16, 8), 90);
  expect_invalid("", "empty");
  expect_invalid("GIF89a....", "neither JPEG nor PNG");
  expect_invalid(png.substr(0, 8), "PNG signature only");
  expect_invalid(png.substr(0, png.size() / 2), "truncated PNG");
  std::string bad_crc = png;
  bad_crc[30] = static_cast<char>(bad_crc[30] ^ 0x55);  // inside IHDR: its CRC no longer matches
  expect_invalid(bad_crc, "corrupt PNG header");
  expect_invalid(jpeg.substr(0, 3), "JPEG signature only");
  expect_invalid(jpeg.substr(0, jpeg.size() / 2), "truncated JPEG");
}

TEST(ColorOrder, ParsesCaseInsensitively) {
  ColorOrder o = ColorOrder::RGB;
  EXPECT_TRUE(parse_color_order("", &o));
  EXPECT_EQ(o, ColorOrder::BGR);
  EXPECT_TRUE(parse_color_order("rgb", &o));
  EXPECT_EQ(o, ColorOrder::RGB);
  EXPECT_TRUE(parse_color_order("Bgr", &o));
  EXPECT_EQ(o, ColorOrder::BGR);
  EXPECT_FALSE(parse_color_order("RGBA", &o));
}

// ---- batches ----------------------------------------------------------------------

// The images as the decoder takes them: views (of the request, in the server).
std::vector<std::string_view> views(const std::vector<std::string>& images) {
  return std::vector<std::string_view>(images.begin(), images.end());
}

ImageBatchSpec spec(const char* shape, DataType dt = DataType::UINT8, int threads = 1) {
  ImageBatchSpec s;
  s.shape = ov::PartialShape(std::string(shape));
  s.dtype = dt;
  s.max_threads = threads;
  return s;
}

TEST(DecodeImageBatch, ImagesLandInTheirSlices) {
  std::vector<std::string> images;
  std::vector<Pixels> expected;
  for (int i = 0; i < 5; ++i) {
    Pixels p = gradient_rgb(6, 4);
    for (uint8_t& v : p) v = static_cast<uint8_t>(v + 11 * i);
    images.push_back(encode_png(6, 4, PNG_COLOR_TYPE_RGB, 8, p));
    expected.push_back(swap_rb(p, 3));
  }
  std::vector<uint8_t> out;
  Shape shape;
  ASSERT_TRUE(decode_image_batch(views(images), spec("[5,4,6,3]", DataType::UINT8, 3), &out, &shape).is_ok());
  EXPECT_EQ(shape, (Shape{5, 4, 6, 3}));
  ASSERT_EQ(out.size(), 5u * 4 * 6 * 3);
  for (size_t i = 0; i < 5; ++i)
    EXPECT_EQ(Pixels(out.begin() + i * 72, out.begin() + (i + 1) * 72), expected[i]) << "image " << i;
}

TEST(DecodeImageBatch, PrecisionConversionKeepsValues) {
  const Pixels gray = {0, 1, 127, 128, 254, 255};
  const std::vector<std::string> images = {encode_png(3, 2, PNG_COLOR_TYPE_GRAY, 8, gray)};
  std::vector<uint8_t> out;
  Shape shape;
  ASSERT_TRUE(decode_image_batch(views(images), spec("[1,2,3,1]", DataType::FP32), &out, &shape).is_ok());
  ASSERT_EQ(out.size(), 6 * sizeof(float));
  const auto* f = reinterpret_cast<const float*>(out.data());
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(f[i], static_cast<float>(gray[i]));
  ASSERT_TRUE(decode_image_batch(views(images), spec("[1,2,3,1]", DataType::INT8), &out, &shape).is_ok());
  const auto* s8 = reinterpret_cast<const int8_t*>(out.data());
  EXPECT_EQ(std::vector<int8_t>(s8, s8 + 6), (std::vector<int8_t>{0, 1, 127, 127, 127, 127})) << "INT8 saturates";
}

TEST(DecodeImageBatch, DownscaleByTwoAveragesEachBlock) {
  // 4x4 gray, each 2x2 block has its own four values; bilinear at half size
  // samples the block centre: the rounded mean
  const Pixels gray = {0, 100, 10, 10,
                       200, 40, 10, 11,
                       255, 255, 1, 2,
                       255, 254, 3, 4};
  const std::vector<std::string> images = {encode_png(4, 4, PNG_COLOR_TYPE_GRAY, 8, gray)};
  std::vector<uint8_t> out;
  Shape shape;
  ASSERT_TRUE(decode_image_batch(views(images), spec("[1,2,2,1]"), &out, &shape).is_ok());
  EXPECT_EQ(out, (Pixels{85, 10, 255, 3}));  // 340/4, 41/4 -> 10, 1019/4 -> 255, 10/4 -> 3 (half up)
}

TEST(DecodeImageBatch, DynamicDimsComeFromTheFirstImage) {
  const std::vector<std::string> images = {encode_png(6, 4, PNG_COLOR_TYPE_RGB, 8, gradient_rgb(6, 4)),
                                           encode_png(6, 4, PNG_COLOR_TYPE_RGB, 8, gradient_rgb(6, 4))};
  std::vector<uint8_t> out;
  Shape shape;
  ASSERT_TRUE(decode_image_batch(views(images), spec("[?,?,?,?]"), &out, &shape).is_ok());
  EXPECT_EQ(shape, (Shape{2, 4, 6, 3}));
  ASSERT_TRUE(decode_image_batch(views(images), spec("[?,1..3,8..,3]"), &out, &shape).is_ok());
  EXPECT_EQ(shape, (Shape{2, 3, 8, 3})) << "bounded dims clamp, then the images are resized";
}

void expect_batch_error(const std::vector<std::string>& images, const ImageBatchSpec& s, const std::string& needle) {
  std::vector<uint8_t> out;
  Shape shape;
  Status st = decode_image_batch(views(images), s, &out, &shape);
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT) << needle;
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

TEST(DecodeImageBatch, MismatchesAreInvalidArgument) {
  const std::string rgb = encode_png(6, 4, PNG_COLOR_TYPE_RGB, 8, gradient_rgb(6, 4));
  const std::string small = encode_png(3, 2, PNG_COLOR_TYPE_RGB, 8, gradient_rgb(3, 2));
  const std::string gray = encode_png(6, 4, PNG_COLOR_TYPE_GRAY, 8, Pixels(24, 9));
  expect_batch_error({}, spec("[1,4,6,3]"), "carries no images");
  expect_batch_error({rgb}, spec("[1,4,6]"), "rank 4");
  expect_batch_error({rgb}, spec("[1,4,6,3]", DataType::BOOL), "cannot be converted to BOOL");
  expect_batch_error({rgb, ""}, spec("[2,4,6,3]"), "element 1 is empty");
  expect_batch_error({gray}, spec("[1,4,6,3]"), "Invalid number of channels");
  expect_batch_error({rgb, small}, spec("[2,?,?,3]"), "same resolution");
  expect_batch_error({rgb, rgb.substr(0, 40)}, spec("[2,4,6,3]", DataType::UINT8, 2), "(element 1)");
  expect_batch_error({rgb}, spec("[1,4,6,5]"), "cannot fill a model input");
}

TEST(DecodeImageInput, ReplacesStringsWithTheDecodedBatch) {
  InputTensor in;
  in.name = "img";
  in.dtype = DataType::BYTES;
  in.shape = {1};
  const std::string request = testkit::framed({encode_png(6, 4, PNG_COLOR_TYPE_RGB, 8, gradient_rgb(6, 4))});
  ASSERT_TRUE(BytesElements::prefixed(reinterpret_cast<const uint8_t*>(request.data()), request.size(), "img", &in.bytes).is_ok());
  const ov::PartialShape model("[?,4,6,3]");
  ASSERT_TRUE(decode_image_input(in, model, DataType::FP32, true, ColorOrder::RGB, "img").is_ok());
  EXPECT_EQ(in.dtype, DataType::FP32);
  EXPECT_EQ(in.shape, (Shape{1, 4, 6, 3}));
  EXPECT_EQ(in.bytes.count(), 0u);
  EXPECT_EQ(in.data, in.owned.data());
  EXPECT_EQ(in.size, 72u * sizeof(float));
  EXPECT_EQ(reinterpret_cast<const float*>(in.data)[1], 100.f) << "RGB: G of the first pixel";
}

TEST(DecodeImageInput, RequestShapeAndLayoutAreChecked) {
  const std::string png = encode_png(6, 4, PNG_COLOR_TYPE_RGB, 8, gradient_rgb(6, 4));
  auto attempt = [&](Shape shape, size_t count, const char* model, bool nhwc) {
    InputTensor in;
    in.dtype = DataType::BYTES;
    in.shape = std::move(shape);
    const std::string request = testkit::framed(std::vector<std::string>(count, png));
    EXPECT_TRUE(BytesElements::prefixed(reinterpret_cast<const uint8_t*>(request.data()), request.size(), "img", &in.bytes).is_ok());
    return decode_image_input(in, ov::PartialShape(std::string(model)), DataType::UINT8, nhwc, ColorOrder::BGR, "img");
  };
  Status st = attempt({1}, 1, "[1,4,6,3]", false);
  EXPECT_NE(st.message().find("NHWC layout; input name: img"), std::string::npos) << st.message();
  st = attempt({1, 1}, 1, "[1,4,6,3]", true);
  EXPECT_NE(st.message().find("binary input shape dimensions: 1; Actual: 2"), std::string::npos) << st.message();
  st = attempt({2}, 1, "[?,4,6,3]", true);
  EXPECT_NE(st.message().find("the shape says 2 images but the request carries 1"), std::string::npos) << st.message();
  st = attempt({2}, 2, "[1,4,6,3]", true);
  EXPECT_NE(st.message().find("Invalid input batch size - Expected: 1; Actual: 2"), std::string::npos) << st.message();
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace ovfast

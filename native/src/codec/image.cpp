#include "ovfast/codec/image.hpp"

#include "ovfast/exec/worker_pool.hpp"
#include "image_pixels.hpp"

#include <algorithm>
#include <atomic>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <limits>
#include <memory>
#include <thread>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <openvino/core/type/float16.hpp>

namespace ovfast {

using image::convert_samples;
using image::image_dtype_supported;
using image::resize_bilinear;

namespace {

// NOTE: a header may claim any size; refuse images whose pixels alone would
// need more than this before allocating anything (8192 x 8192).
constexpr uint64_t kMaxPixels = uint64_t{1} << 26;
// And the whole decoded batch (all images at model resolution, any dtype).
constexpr uint64_t kMaxBatchBytes = uint64_t{1} << 31;

// Where the decoded rows go. begin() is called once the header is parsed and
// returns h*w*c writable bytes, or nullptr (with error_ set) to stop.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual uint8_t* begin(int h, int w, int c) = 0;
  Status error_;
};

class VectorSink : public Sink {
 public:
  explicit VectorSink(DecodedImage* img) : img_(img) {}
  uint8_t* begin(int h, int w, int c) override {
    img_->height = h;
    img_->width = w;
    img_->channels = c;
    img_->pixels.resize(static_cast<size_t>(h) * w * c);
    return img_->pixels.data();
  }

 private:
  DecodedImage* img_;
};

bool too_large(uint64_t h, uint64_t w) { return h == 0 || w == 0 || h * w > kMaxPixels; }

// ---- JPEG -----------------------------------------------------------------
// NOTE: libjpeg reports errors through error_exit, whose default calls exit().
// Ours longjmps back to decode_jpeg(); warnings (corrupt data, premature end of
// file) are errors too, except extraneous bytes between markers, which many
// cameras write and which do not change the pixels.
struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void ovf_jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

extern "C" void ovf_jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace output
  if (cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
  ovf_jpeg_error_exit(cinfo);
}

// State that must survive a longjmp lives here, outside decode_jpeg's frame.
struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  Sink* sink = nullptr;
  uint8_t* dst = nullptr;
  bool created = false;
};

// Returns an empty string on success, else the reason. No C++ object with a
// destructor is created between setjmp and the last libjpeg call.
std::string decode_jpeg(const uint8_t* data, size_t size, ColorOrder order, Sink* sink) {
  // NOTE: the state lives on the heap so nothing in this frame changes between
  // setjmp and a longjmp (such locals would be indeterminate afterwards).
  std::unique_ptr<JpegState> holder(new JpegState());
  JpegState& st = *holder;
  st.sink = sink;
  st.cinfo.err = jpeg_std_error(&st.errors.pub);
  st.errors.pub.error_exit = ovf_jpeg_error_exit;
  st.errors.pub.emit_message = ovf_jpeg_emit_message;
  st.errors.message[0] = '\0';
  if (setjmp(st.errors.jump)) {
    if (st.created) jpeg_destroy_decompress(&st.cinfo);
    return st.errors.message[0] ? st.errors.message : "invalid JPEG data";
  }
  jpeg_create_decompress(&st.cinfo);
  st.created = true;
  jpeg_mem_src(&st.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&st.cinfo, TRUE);
  int channels;
  switch (st.cinfo.num_components) {
    case 1:
      st.cinfo.out_color_space = JCS_GRAYSCALE;
      channels = 1;
      break;
    case 3:
      st.cinfo.out_color_space = order == ColorOrder::BGR ? JCS_EXT_BGR : JCS_EXT_RGB;
      channels = 3;
      break;
    default:
      std::snprintf(st.errors.message, sizeof(st.errors.message),
                    "JPEG with %d colour components (CMYK/YCCK) is not supported", st.cinfo.num_components);
      jpeg_destroy_decompress(&st.cinfo);
      return st.errors.message;
  }
  if (too_large(st.cinfo.image_height, st.cinfo.image_width)) {
    std::snprintf(st.errors.message, sizeof(st.errors.message), "image of %ux%u pixels is larger than allowed",
                  st.cinfo.image_width, st.cinfo.image_height);
    jpeg_destroy_decompress(&st.cinfo);
    return st.errors.message;
  }
  st.dst = sink->begin(static_cast<int>(st.cinfo.image_height), static_cast<int>(st.cinfo.image_width), channels);
  if (!st.dst) {
    jpeg_destroy_decompress(&st.cinfo);
    return {};  // the sink holds the reason
  }
  jpeg_start_decompress(&st.cinfo);
  const size_t stride = static_cast<size_t>(st.cinfo.output_width) * channels;
  while (st.cinfo.output_scanline < st.cinfo.output_height) {
    JSAMPROW row = st.dst + st.cinfo.output_scanline * stride;
    jpeg_read_scanlines(&st.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&st.cinfo);
  jpeg_destroy_decompress(&st.cinfo);
  return {};
}

// ---- PNG ------------------------------------------------------------------
struct PngState {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  std::jmp_buf jump;
  char message[256];
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<png_bytep> rows;  // sized before the jump target is left
};

extern "C" void ovf_png_error(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof(st->message), "%s", msg ? msg : "invalid PNG data");
  std::longjmp(st->jump, 1);
}

extern "C" void ovf_png_warning(png_structp, png_const_charp) {}

extern "C" void ovf_png_read(png_structp png, png_bytep out, size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_error(png, "truncated PNG data");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

std::string decode_png(const uint8_t* data, size_t size, ColorOrder order, Sink* sink) {
  std::unique_ptr<PngState> holder(new PngState());  // see decode_jpeg
  PngState& st = *holder;
  st.data = data;
  st.size = size;
  st.message[0] = '\0';
  st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, ovf_png_error, ovf_png_warning);
  if (!st.png) return "cannot allocate a PNG decoder";
  st.info = png_create_info_struct(st.png);
  if (!st.info) {
    png_destroy_read_struct(&st.png, nullptr, nullptr);
    return "cannot allocate a PNG decoder";
  }
  if (setjmp(st.jump)) {
    png_destroy_read_struct(&st.png, &st.info, nullptr);
    return st.message[0] ? st.message : "invalid PNG data";
  }
  png_set_read_fn(st.png, &st, ovf_png_read);
  png_set_user_limits(st.png, 1u << 16, 1u << 16);
  png_read_info(st.png, st.info);
  const png_uint_32 width = png_get_image_width(st.png, st.info);
  const png_uint_32 height = png_get_image_height(st.png, st.info);
  if (too_large(height, width)) {
    std::snprintf(st.message, sizeof(st.message), "image of %ux%u pixels is larger than allowed",
                  static_cast<unsigned>(width), static_cast<unsigned>(height));
    png_destroy_read_struct(&st.png, &st.info, nullptr);
    return st.message;
  }
  const int color = png_get_color_type(st.png, st.info);
  const int depth = png_get_bit_depth(st.png, st.info);
  // Normalise to 8-bit gray, gray+alpha->RGBA, RGB or RGBA (as OpenCV's
  // IMREAD_UNCHANGED does, except that 16-bit samples are scaled to 8 bits).
  if (depth == 16) png_set_scale_16(st.png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(st.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(st.png);
  const bool trns = png_get_valid(st.png, st.info, PNG_INFO_tRNS) != 0;
  if (trns) png_set_tRNS_to_alpha(st.png);
  png_set_packing(st.png);
  // NOTE: png_read_update_info may run only once, so the channel count after
  // the transforms is worked out from the header.
  const bool gray = color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA;
  const bool alpha = (color & PNG_COLOR_MASK_ALPHA) != 0 || trns;
  int channels = gray && !alpha ? 1 : (alpha ? 4 : 3);
  if (gray && alpha) png_set_gray_to_rgb(st.png);  // gray + alpha: colour with alpha, like OpenCV
  if (order == ColorOrder::BGR && channels >= 3) png_set_bgr(st.png);
  png_set_interlace_handling(st.png);
  png_read_update_info(st.png, st.info);
  if (png_get_channels(st.png, st.info) != channels) {
    std::snprintf(st.message, sizeof(st.message), "unsupported PNG pixel format");
    png_destroy_read_struct(&st.png, &st.info, nullptr);
    return st.message;
  }
  if (png_get_rowbytes(st.png, st.info) != static_cast<size_t>(width) * channels) {
    std::snprintf(st.message, sizeof(st.message), "unsupported PNG pixel format");
    png_destroy_read_struct(&st.png, &st.info, nullptr);
    return st.message;
  }
  uint8_t* dst = sink->begin(static_cast<int>(height), static_cast<int>(width), channels);
  if (!dst) {
    png_destroy_read_struct(&st.png, &st.info, nullptr);
    return {};
  }
  st.rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) st.rows[y] = dst + static_cast<size_t>(y) * width * channels;
  png_read_image(st.png, st.rows.data());
  png_read_end(st.png, nullptr);
  png_destroy_read_struct(&st.png, &st.info, nullptr);
  return {};
}

bool is_png(const uint8_t* d, size_t n) { return n >= 8 && png_sig_cmp(d, 0, 8) == 0; }
bool is_jpeg(const uint8_t* d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }

// Decodes into the sink; the Status carries the library's reason.
Status decode_into(const uint8_t* data, size_t size, ColorOrder order, Sink* sink) {
  std::string why;
  if (is_jpeg(data, size)) {
    why = decode_jpeg(data, size, order, sink);
  } else if (is_png(data, size)) {
    why = decode_png(data, size, order, sink);
  } else {
    return invalid_argument("Image parsing failed - the data is neither JPEG nor PNG");
  }
  if (!sink->error_.is_ok()) return sink->error_;
  if (!why.empty()) return invalid_argument("Image parsing failed - " + why);
  return Status::ok();
}

bool fully_dynamic(const ov::Dimension& d) { return d.is_dynamic() && d.get_min_length() <= 0 && d.get_max_length() < 0; }

// Target extent for one dimension given the first image's extent.
int64_t pick_extent(const ov::Dimension& d, int64_t first) {
  if (d.is_static()) return d.get_length();
  int64_t v = first;
  if (d.get_min_length() > 0) v = std::max<int64_t>(v, d.get_min_length());
  if (d.get_max_length() >= 0) v = std::min<int64_t>(v, d.get_max_length());
  return v;
}

// Decodes one element straight into its slice of the batch: rows land in the
// slice when no resize or conversion is needed, otherwise in scratch first.
class SliceSink : public Sink {
 public:
  SliceSink(size_t index, int h, int w, int c, bool resize_ok, DataType dt, uint8_t* slice,
            std::vector<uint8_t>* scratch)
      : index_(index), h_(h), w_(w), c_(c), resize_ok_(resize_ok), dt_(dt), slice_(slice), scratch_(scratch) {}

  uint8_t* begin(int h, int w, int c) override {
    if (c != c_) {
      error_ = invalid_argument("Invalid number of channels in binary input - Expected: " + std::to_string(c_) +
                                "; Actual: " + std::to_string(c) + " (element " + std::to_string(index_) + ")");
      return nullptr;
    }
    if ((h != h_ || w != w_) && !resize_ok_) {
      error_ = invalid_argument(
          "Binary input images for this endpoint are required to have the same resolution - expected " +
          std::to_string(w_) + "x" + std::to_string(h_) + ", element " + std::to_string(index_) + " is " +
          std::to_string(w) + "x" + std::to_string(h));
      return nullptr;
    }
    src_h_ = h;
    src_w_ = w;
    if (h == h_ && w == w_ && dt_ == DataType::UINT8) return slice_;
    scratch_->resize(static_cast<size_t>(h) * w * c);
    return scratch_->data();
  }

  // Resize/convert what begin() put in scratch into the slice.
  void finish(std::vector<uint8_t>* resized) {
    if (src_h_ == h_ && src_w_ == w_) {
      if (dt_ != DataType::UINT8) convert_samples(scratch_->data(), scratch_->size(), dt_, slice_);
      return;
    }
    const size_t n = static_cast<size_t>(h_) * w_ * c_;
    if (dt_ == DataType::UINT8) {
      resize_bilinear(scratch_->data(), src_h_, src_w_, slice_, h_, w_, c_);
    } else {
      resized->resize(n);
      resize_bilinear(scratch_->data(), src_h_, src_w_, resized->data(), h_, w_, c_);
      convert_samples(resized->data(), n, dt_, slice_);
    }
  }

 private:
  size_t index_;
  int h_, w_, c_;
  bool resize_ok_;
  DataType dt_;
  uint8_t* slice_;
  std::vector<uint8_t>* scratch_;
  int src_h_ = 0, src_w_ = 0;
};

}  // namespace

bool parse_color_order(const std::string& text, ColorOrder* out) {
  std::string t;
  for (char ch : text) t += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (t.empty() || t == "BGR") { *out = ColorOrder::BGR; return true; }
  if (t == "RGB") { *out = ColorOrder::RGB; return true; }
  return false;
}

Status decode_image(const uint8_t* data, size_t size, ColorOrder order, DecodedImage* out) {
  if (size == 0) return invalid_argument("Image parsing failed - the data is empty");
  VectorSink sink(out);
  return decode_into(data, size, order, &sink);
}

Status decode_image_batch(const std::vector<std::string_view>& images, const ImageBatchSpec& spec,
                          std::vector<uint8_t>* out, Shape* out_shape) {
  const size_t n = images.size();
  if (n == 0) return invalid_argument("Binary input carries no images");
  if (spec.shape.rank().is_dynamic() || spec.shape.size() != 4)
    return invalid_argument("Binary image inputs need a model input of rank 4 (NHWC)");
  if (!image_dtype_supported(spec.dtype))
    return invalid_argument("Invalid input precision - binary images cannot be converted to " +
                            std::string(datatype_info(spec.dtype).kserve_name));
  for (size_t i = 0; i < n; ++i)
    if (images[i].empty()) return invalid_argument("Binary input element " + std::to_string(i) + " is empty");

  const ov::Dimension& dh = spec.shape[1];
  const ov::Dimension& dw = spec.shape[2];
  const ov::Dimension& dc = spec.shape[3];
  const bool resize_ok = !fully_dynamic(dh) && !fully_dynamic(dw);
  const auto* first_data = reinterpret_cast<const uint8_t*>(images[0].data());

  // Dynamic target dims come from the first image, decoded on its own first.
  DecodedImage first;
  bool first_done = false;
  int64_t h, w, c;
  if (dh.is_static() && dw.is_static() && dc.is_static()) {
    h = dh.get_length();
    w = dw.get_length();
    c = dc.get_length();
  } else {
    Status st = decode_image(first_data, images[0].size(), spec.order, &first);
    if (!st.is_ok()) return invalid_argument(st.message() + " (element 0)");
    first_done = true;
    h = pick_extent(dh, first.height);
    w = pick_extent(dw, first.width);
    c = pick_extent(dc, first.channels);
  }
  if (h <= 0 || w <= 0 || c <= 0 || static_cast<uint64_t>(h) * w > kMaxPixels || c > 4)
    return invalid_argument("Binary image inputs cannot fill a model input of shape " + spec.shape.to_string());
  const size_t elsize = datatype_size(spec.dtype);
  const uint64_t slice_bytes = static_cast<uint64_t>(h) * w * c * elsize;
  if (slice_bytes * n > kMaxBatchBytes) return invalid_argument("Binary input batch is too large to decode");

  out->resize(static_cast<size_t>(slice_bytes * n));
  *out_shape = {static_cast<int64_t>(n), h, w, c};

  std::vector<Status> results(n);
  // Per worker thread: scratch buffers reused across the images it decodes.
  thread_local std::vector<uint8_t> scratch, resized;
  auto decode_one = [&](size_t i) {
    uint8_t* slice = out->data() + i * slice_bytes;
    SliceSink sink(i, static_cast<int>(h), static_cast<int>(w), static_cast<int>(c), resize_ok, spec.dtype, slice,
                   &scratch);
    Status st;
    if (i == 0 && first_done) {
      // Already decoded: replay it through the sink's checks.
      uint8_t* dst = sink.begin(first.height, first.width, first.channels);
      if (dst) std::memcpy(dst, first.pixels.data(), first.pixels.size());
      st = sink.error_;
    } else {
      st = decode_into(reinterpret_cast<const uint8_t*>(images[i].data()), images[i].size(), spec.order, &sink);
    }
    if (st.is_ok()) sink.finish(&resized);
    results[i] = std::move(st);
  };
  // The images of a batch decode in parallel on the shared worker pool (threads reused, never created here).
  WorkerPool& pool = WorkerPool::shared();
  const unsigned hw = spec.max_threads > 0 ? static_cast<unsigned>(spec.max_threads) : pool.size();
  pool.parallel_for(n, decode_one, std::max(1u, hw) - 1);
  for (size_t i = 0; i < n; ++i) {
    if (!results[i].is_ok()) {
      out->clear();
      const std::string& m = results[i].message();
      if (m.find("(element ") != std::string::npos) return results[i];
      return invalid_argument(m + " (element " + std::to_string(i) + ")");
    }
  }
  return Status::ok();
}

Status decode_image_input(InputTensor& in, const ov::PartialShape& model_shape, DataType model_dtype,
                          bool nhwc_ok, ColorOrder order, const std::string& input_name) {
  const std::string suffix = "; input name: " + input_name;
  if (!nhwc_ok)
    return invalid_argument("Received binary image input but resource not configured to accept NHWC layout" + suffix);
  if (in.shape.size() != 1)
    return invalid_argument("Invalid number of shape dimensions - Expected number of binary input shape dimensions: "
                            "1; Actual: " + std::to_string(in.shape.size()) + suffix);
  if (in.shape[0] < 0 || static_cast<uint64_t>(in.shape[0]) != in.bytes.count())
    return invalid_argument("Invalid input batch size - the shape says " + std::to_string(in.shape[0]) +
                            " images but the request carries " + std::to_string(in.bytes.count()) + suffix);
  if (!model_shape[0].compatible(ov::Dimension(in.shape[0]))) {
    std::string expected = ov::PartialShape({model_shape[0]}).to_string();
    return invalid_argument("Invalid input batch size - Expected: " + expected.substr(1, expected.size() - 2) +
                            "; Actual: " + std::to_string(in.shape[0]) + suffix);
  }
  ImageBatchSpec spec;
  spec.shape = model_shape;
  spec.dtype = model_dtype;
  spec.order = order;
  std::vector<uint8_t> pixels;
  Shape shape;
  Status st = decode_image_batch(in.bytes.views(), spec, &pixels, &shape);
  if (!st.is_ok()) return invalid_argument(st.message() + suffix);
  in.bytes = BytesElements();
  in.owned = std::move(pixels);
  in.data = in.owned.data();
  in.size = in.owned.size();
  in.shape = std::move(shape);
  in.dtype = model_dtype;
  in.datatype_name.clear();
  in.has_typed_contents = false;
  in.typed_count = 0;
  return Status::ok();
}

}  // namespace ovfast

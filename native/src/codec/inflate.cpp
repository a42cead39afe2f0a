#include "ovfast/codec/inflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>

namespace ovfast {
namespace {

constexpr size_t kScratch = 64 * 1024;

Status not_compressed(MessageCompression kind) {
  return invalid_argument(std::string("Invalid compressed message - the data is not a complete ") +
                          (kind == MessageCompression::GZIP ? "gzip" : "deflate") + " stream");
}

// One inflate pass over `pieces`. With `dest` null the output goes to a
// scratch buffer and is only counted; otherwise it is written at dest
// (capacity `cap`). Returns the inflated size through *total.
Status run(const std::vector<ByteRange>& pieces, MessageCompression kind, size_t max_bytes, uint8_t* dest, size_t cap,
           size_t* total) {
  z_stream zs{};
  // grpc's deflate is a zlib stream (window bits 15); gzip adds 16.
  if (inflateInit2(&zs, kind == MessageCompression::GZIP ? 15 + 16 : 15) != Z_OK)
    return internal_error("Internal server error - cannot initialise zlib");
  static thread_local uint8_t scratch[kScratch];
  size_t produced = 0;
  int rc = Z_OK;
  Status st = Status::ok();
  for (size_t i = 0; i < pieces.size() && rc != Z_STREAM_END && st.is_ok(); ++i) {
    const uint8_t* p = pieces[i].data;
    size_t left = pieces[i].size;
    while (left > 0 && rc != Z_STREAM_END) {
      const uInt take = static_cast<uInt>(std::min<size_t>(left, UINT_MAX));
      zs.next_in = const_cast<Bytef*>(p);
      zs.avail_in = take;
      do {
        // Output goes to `dest` while it has room; the scratch buffer takes
        // the measuring pass, and any surplus of the writing pass (an error).
        const bool to_dest = dest && produced < cap;
        uint8_t* o = to_dest ? dest + produced : scratch;
        const uInt room = static_cast<uInt>(to_dest ? std::min(cap - produced, kScratch) : kScratch);
        zs.next_out = o;
        zs.avail_out = room;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
          st = not_compressed(kind);
          break;
        }
        const size_t got = room - zs.avail_out;
        if (dest && !to_dest && got) {
          st = internal_error("Internal server error - the message inflated differently twice");
          break;
        }
        produced += got;
        if (produced > max_bytes) {
          // NOTE: refused mid-stream: nothing beyond zlib's window was ever held.
          st = {StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max (more than " +
                                                    std::to_string(max_bytes) + " bytes once decompressed)"};
          break;
        }
        if (rc == Z_BUF_ERROR) break;  // wants more input
      } while (zs.avail_out == 0 && rc != Z_STREAM_END);
      if (!st.is_ok()) break;
      const size_t used = take - zs.avail_in;
      p += used;
      left -= used;
      if (used == 0 && rc != Z_STREAM_END) { st = not_compressed(kind); break; }
    }
  }
  if (st.is_ok() && rc != Z_STREAM_END) st = not_compressed(kind);
  inflateEnd(&zs);
  *total = produced;
  return st;
}

}  // namespace

Status inflate_message(const std::vector<ByteRange>& pieces, MessageCompression kind, size_t max_bytes,
                       std::string* out) {
  size_t size = 0;
  OVF_RETURN_IF_ERROR(run(pieces, kind, max_bytes, nullptr, 0, &size));
  out->clear();
  out->resize(size);
  size_t written = 0;
  if (size == 0) return Status::ok();
  OVF_RETURN_IF_ERROR(run(pieces, kind, max_bytes, reinterpret_cast<uint8_t*>(out->data()), size, &written));
  if (written != size) return internal_error("Internal server error - the message inflated differently twice");
  return Status::ok();
}

}  // namespace ovfast

// Minimal protobuf wire-format reader and writer (proto3 subset: varint,
// fixed32/64, length-delimited). The reader never copies; every view it
// returns points into the buffer it was given, which the caller must keep
// alive. The reader is bounds-checked on every step; malformed input yields
// ok() == false, never undefined behaviour. A reader or writer belongs to one
// thread; there is no shared state.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ovfast::wire {

enum WireType : uint32_t { VARINT = 0, FIXED64 = 1, LEN = 2, SGROUP = 3, EGROUP = 4, FIXED32 = 5 };

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  explicit Reader(std::string_view s) : Reader(reinterpret_cast<const uint8_t*>(s.data()), s.size()) {}

  bool done() const { return p_ >= end_ || failed_; }
  bool ok() const { return !failed_; }
  // Reads a tag; returns false at end or on error.
  bool next(uint32_t* field, WireType* type) {
    if (p_ >= end_ || failed_) return false;
    uint64_t tag;
    if (!varint(&tag)) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *type = static_cast<WireType>(tag & 7);
    if (*field == 0) return fail();
    return true;
  }
  bool varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return fail();
      uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) { *out = v; return true; }
    }
    return fail();
  }
  bool fixed32(uint32_t* out) {
    if (end_ - p_ < 4) return fail();
    std::memcpy(out, p_, 4); p_ += 4; return true;
  }
  bool fixed64(uint64_t* out) {
    if (end_ - p_ < 8) return fail();
    std::memcpy(out, p_, 8); p_ += 8; return true;
  }
  bool bytes(const uint8_t** data, size_t* len) {
    uint64_t n;
    if (!varint(&n)) return false;
    if (n > static_cast<uint64_t>(end_ - p_)) return fail();
    *data = p_; *len = static_cast<size_t>(n); p_ += n; return true;
  }
  bool view(std::string_view* out) {
    const uint8_t* d; size_t n;
    if (!bytes(&d, &n)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(d), n);
    return true;
  }
  bool skip(WireType t) {
    uint64_t v; uint32_t v32; const uint8_t* d; size_t n;
    switch (t) {
      case VARINT: return varint(&v);
      case FIXED64: return fixed64(&v);
      case LEN: return bytes(&d, &n);
      case FIXED32: return fixed32(&v32);
      default: return fail();  // groups are not used by any message we read
    }
  }
  bool fail() { failed_ = true; return false; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  bool failed_ = false;
};

// One occurrence of a field, kept as a view until it can be interpreted
// (repeated scalars arrive packed in a LEN field or one by one).
struct Span {
  uint32_t field;
  WireType type;
  const uint8_t* data;  // LEN occurrences
  size_t len;
  uint64_t scalar;      // VARINT / FIXED32 / FIXED64 occurrences
};

// Reads the value of the field whose tag (`field`, `type`) was just read.
inline bool read_span(Reader& r, uint32_t field, WireType type, Span* s) {
  *s = Span{field, type, nullptr, 0, 0};
  switch (type) {
    case LEN: return r.bytes(&s->data, &s->len);
    case VARINT: return r.varint(&s->scalar);
    case FIXED32: { uint32_t v; if (!r.fixed32(&v)) return false; s->scalar = v; return true; }
    case FIXED64: return r.fixed64(&s->scalar);
    default: return r.fail();
  }
}

// Calls fn(bits) for every value of the repeated scalar `field` in the message
// at [d, d + n), packed or not; `scalar_type` is the wire type of one unpacked
// element. Nothing is allocated. False on bad packing or malformed data.
template <typename Fn>
bool for_each_scalar(const uint8_t* d, size_t n, uint32_t field, WireType scalar_type, Fn&& fn) {
  Reader r(d, n);
  uint32_t f; WireType t;
  while (r.next(&f, &t)) {
    Span s;
    if (!read_span(r, f, t, &s)) return false;
    if (f != field) continue;
    if (t == scalar_type) { fn(s.scalar); continue; }
    if (t != LEN) return false;
    Reader p(s.data, s.len);
    while (!p.done()) {
      uint64_t v = 0;
      if (scalar_type == VARINT) {
        if (!p.varint(&v)) return false;
      } else if (scalar_type == FIXED32) {
        uint32_t v32; if (!p.fixed32(&v32)) return false; v = v32;
      } else if (!p.fixed64(&v)) {
        return false;
      }
      fn(v);
    }
  }
  return r.ok();
}

// Calls fn(span) for every occurrence of `field` in the message at [d, d + n);
// false on malformed data or when fn returns false.
template <typename Fn>
bool for_each_occurrence(const uint8_t* d, size_t n, uint32_t field, Fn&& fn) {
  Reader r(d, n);
  uint32_t f; WireType t;
  while (r.next(&f, &t)) {
    Span s;
    if (!read_span(r, f, t, &s)) return false;
    if (f == field && !fn(s)) return false;
  }
  return r.ok();
}

// Elements of a packed varint payload (bytes without the continuation bit).
inline size_t packed_varint_count(const uint8_t* d, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) count += (d[i] & 0x80) == 0;
  return count;
}

// Bytes in the well-formed UTF-8 sequence at [p, end) (no overlongs, no
// surrogates, nothing above U+10FFFF: what Python's decoder accepts); 0 when
// the bytes at p do not start one.
inline size_t utf8_sequence_size(const uint8_t* p, const uint8_t* end) {
  uint8_t c = *p;
  if (c < 0x80) return 1;
  int n; uint32_t cp;
  if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
  else return 0;
  if (end - p <= n) return 0;
  for (int i = 1; i <= n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return static_cast<size_t>(n) + 1;
}

// proto3 `string` fields must hold valid UTF-8 (overlongs and surrogates rejected).
inline bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    size_t n = utf8_sequence_size(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) { v >>= 7; ++n; }
  return n;
}
inline size_t tag_size(uint32_t field) { return varint_size(static_cast<uint64_t>(field) << 3); }
inline size_t len_field_size(uint32_t field, size_t len) { return tag_size(field) + varint_size(len) + len; }

// Writes into a pre-sized buffer; callers compute sizes first so the response
// is one allocation.
class Writer {
 public:
  explicit Writer(uint8_t* p) : p_(p) {}
  void varint(uint64_t v) {
    while (v >= 0x80) { *p_++ = static_cast<uint8_t>(v | 0x80); v >>= 7; }
    *p_++ = static_cast<uint8_t>(v);
  }
  void tag(uint32_t field, WireType t) { varint((static_cast<uint64_t>(field) << 3) | t); }
  void len_prefix(uint32_t field, size_t len) { tag(field, LEN); varint(len); }
  void raw(const void* d, size_t n) { if (n) std::memcpy(p_, d, n); p_ += n; }
  void string(uint32_t field, std::string_view s) { len_prefix(field, s.size()); raw(s.data(), s.size()); }
  uint8_t* pos() const { return p_; }

 private:
  uint8_t* p_;
};

}  // namespace ovfast::wire

// Test-only protobuf wire helpers, written independently of ovfast/codec/wire.hpp so
// that the codec tests never check the codecs with the code under test.
//
// Msg builds serialized messages field by field (including deliberately
// malformed ones through raw()); decode() splits a serialized message into
// its top-level fields for assertions on encoder output.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ovfast::testkit {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

class Msg {
 public:
  Msg& varint(uint32_t field, uint64_t v) { tag(field, 0); put_varint(b_, v); return *this; }
  // int32/int64 fields: negative values are sign-extended to ten bytes.
  Msg& sint(uint32_t field, int64_t v) { return varint(field, static_cast<uint64_t>(v)); }
  Msg& fixed32(uint32_t field, uint32_t v) { tag(field, 5); le(&v, 4); return *this; }
  Msg& fixed64(uint32_t field, uint64_t v) { tag(field, 1); le(&v, 8); return *this; }
  Msg& f32(uint32_t field, float v) { uint32_t u; std::memcpy(&u, &v, 4); return fixed32(field, u); }
  Msg& f64(uint32_t field, double v) { uint64_t u; std::memcpy(&u, &v, 8); return fixed64(field, u); }
  Msg& bytes(uint32_t field, std::string_view s) {
    tag(field, 2);
    put_varint(b_, s.size());
    b_.append(s.data(), s.size());
    return *this;
  }
  Msg& msg(uint32_t field, const Msg& m) { return bytes(field, m.str()); }
  Msg& packed_varints(uint32_t field, const std::vector<uint64_t>& vs) {
    std::string p;
    for (uint64_t v : vs) put_varint(p, v);
    return bytes(field, p);
  }
  Msg& packed_f32(uint32_t field, const std::vector<float>& vs) {
    return bytes(field, std::string_view(reinterpret_cast<const char*>(vs.data()), vs.size() * 4));
  }
  Msg& packed_f64(uint32_t field, const std::vector<double>& vs) {
    return bytes(field, std::string_view(reinterpret_cast<const char*>(vs.data()), vs.size() * 8));
  }
  // Appends bytes as they are (truncations, bad tags, groups ...).
  Msg& raw(std::string_view s) { b_.append(s.data(), s.size()); return *this; }
  Msg& tag(uint32_t field, int wire_type) {
    put_varint(b_, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
    return *this;
  }

  const std::string& str() const { return b_; }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(b_.data()); }
  size_t size() const { return b_.size(); }

 private:
  void le(const void* v, size_t n) { b_.append(static_cast<const char*>(v), n); }  // x86-64: host order is LE
  std::string b_;
};

// One top-level field of a decoded message.
struct Field {
  uint32_t number = 0;
  int type = 0;          // wire type
  uint64_t scalar = 0;   // VARINT / FIXED32 / FIXED64
  std::string bytes;     // LEN
};

// Splits `s` into its fields; false when the bytes are not a well-formed message.
inline bool decode(std::string_view s, std::vector<Field>* out) {
  size_t i = 0;
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= s.size()) return false;
      const auto b = static_cast<uint8_t>(s[i++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  while (i < s.size()) {
    uint64_t tag;
    if (!varint(&tag)) return false;
    Field f;
    f.number = static_cast<uint32_t>(tag >> 3);
    f.type = static_cast<int>(tag & 7);
    if (f.number == 0) return false;
    if (f.type == 0) {
      if (!varint(&f.scalar)) return false;
    } else if (f.type == 1 || f.type == 5) {
      const size_t n = f.type == 1 ? 8 : 4;
      if (s.size() - i < n) return false;
      std::memcpy(&f.scalar, s.data() + i, n);
      i += n;
    } else if (f.type == 2) {
      uint64_t n;
      if (!varint(&n) || n > s.size() - i) return false;
      f.bytes.assign(s.data() + i, n);
      i += n;
    } else {
      return false;
    }
    out->push_back(std::move(f));
  }
  return true;
}

// The occurrences of field `number` in `fields`, in order.
inline std::vector<Field> fields_of(const std::vector<Field>& fields, uint32_t number) {
  std::vector<Field> out;
  for (const Field& f : fields)
    if (f.number == number) out.push_back(f);
  return out;
}

// Unpacks a packed repeated varint payload.
inline std::vector<uint64_t> unpack_varints(std::string_view s) {
  std::vector<uint64_t> out;
  uint64_t v = 0;
  int shift = 0;
  for (char c : s) {
    const auto b = static_cast<uint8_t>(c);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) {
      out.push_back(v);
      v = 0;
      shift = 0;
    }
  }
  return out;
}

}  // namespace ovfast::testkit

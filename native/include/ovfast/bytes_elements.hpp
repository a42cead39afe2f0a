// BytesElements: the elements of a BYTES input, located in the request but
// not copied. A codec records where they are and how many there are (counted
// without allocating per element); validation compares that count with the
// shape; only a request the model accepts has its elements written, once,
// into their destination (an OpenVINO string tensor, or views for the image
// decoder). A million empty elements therefore cost nothing until a model
// takes them, and what they will cost there is known beforehand
// (string_tensor_bytes) so a transport can reserve it.
//
// Ownership: like InputTensor::data, a BytesElements views memory it does not
// own; whoever built the request keeps that memory alive (InferJob::keepalive).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ovfast/codec/wire.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

class BytesElements {
 public:
  BytesElements() = default;

  // (uint32 little-endian length, bytes)* at [data, data + size): KServe
  // raw_input_contents, the REST binary extension. INVALID_ARGUMENT naming
  // `input_name` and the offset on a truncated prefix or an element that
  // overruns the buffer.
  static Status prefixed(const uint8_t* data, size_t size, const std::string& input_name, BytesElements* out);

  // Every occurrence of the bytes field `field` in the protobuf message at
  // [msg, msg + len); with `outer` != 0, in each occurrence of the message
  // field `outer` of it instead (KServe: contents(5).bytes_contents(8); TFS:
  // string_val(8) of the TensorProto, outer 0). False when an occurrence is
  // not length-delimited or the wire data is malformed.
  static bool in_field(const uint8_t* msg, size_t len, uint32_t outer, uint32_t field, BytesElements* out);

  size_t count() const { return count_; }
  // The elements' bytes together (length prefixes and tags excluded).
  size_t payload_bytes() const { return bytes_; }
  // What the elements cost as an OpenVINO string tensor: one std::string each,
  // plus the heap copy of every element too long for the string's inline buffer.
  size_t string_tensor_bytes() const;

  // Calls fn(std::string_view) for each element in order.
  template <typename Fn>
  void for_each(Fn&& fn) const;
  // Assigns the elements to dst[0 .. count()).
  void write_to(std::string* dst) const;
  // The elements as views (valid while the request's memory is).
  std::vector<std::string_view> views() const;

 private:
  enum class Layout : uint8_t { NONE, PREFIXED, FIELD };
  template <typename Fn>
  bool walk_field(Fn&& fn) const;

  Layout layout_ = Layout::NONE;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t outer_ = 0, field_ = 0;
  size_t count_ = 0;
  size_t bytes_ = 0;
  size_t long_bytes_ = 0;  // bytes of the elements that do not fit a std::string inline
};

template <typename Fn>
bool BytesElements::walk_field(Fn&& fn) const {
  auto inner = [&](const uint8_t* d, size_t n) {
    return wire::for_each_occurrence(d, n, field_, [&](const wire::Span& s) {
      if (s.type != wire::LEN) return false;
      fn(std::string_view(reinterpret_cast<const char*>(s.data), s.len));
      return true;
    });
  };
  if (outer_ == 0) return inner(data_, size_);
  return wire::for_each_occurrence(data_, size_, outer_, [&](const wire::Span& s) {
    return s.type == wire::LEN && inner(s.data, s.len);
  });
}

template <typename Fn>
void BytesElements::for_each(Fn&& fn) const {
  if (layout_ == Layout::FIELD) {
    walk_field(fn);
    return;
  }
  if (layout_ != Layout::PREFIXED) return;
  for (size_t at = 0; at < size_;) {
    uint32_t n;
    std::memcpy(&n, data_ + at, 4);  // checked by prefixed()
    fn(std::string_view(reinterpret_cast<const char*>(data_ + at + 4), n));
    at += 4 + static_cast<size_t>(n);
  }
}

}  // namespace ovfast

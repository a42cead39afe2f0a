// Helpers shared by the codec suites (kserve_codec_test, tfs_codec_test, ...):
// reading a parsed input's elements, framing BYTES elements, building output tensors, and decoding
// encoder output with the test's own wire reader.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "ovfast/request.hpp"
#include "proto_builder.hpp"

namespace ovfast::testkit {

// The elements of a parsed fixed-size input, copied out.
template <typename T>
std::vector<T> values_of(const InputTensor& in) {
  EXPECT_EQ(in.size % sizeof(T), 0u);
  std::vector<T> out(in.size / sizeof(T));
  if (in.size) std::memcpy(out.data(), in.data, in.size);
  return out;
}

// The BYTES elements a parse located, written out as an OpenVINO string tensor would hold them.
inline std::vector<std::string> elements_of(const BytesElements& e) {
  std::vector<std::string> out(e.count());
  e.write_to(out.data());
  return out;
}

// BYTES elements framed as KServe raw contents: (uint32 LE length, bytes)*.
inline std::string framed(const std::vector<std::string>& elements) {
  std::string out;
  for (const std::string& e : elements) {
    const auto n = static_cast<uint32_t>(e.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out += e;
  }
  return out;
}

// int32/int64 protobuf values as varints (negatives sign-extended).
inline std::vector<uint64_t> signed_varints(std::initializer_list<int64_t> vs) {
  std::vector<uint64_t> out;
  for (int64_t v : vs) out.push_back(static_cast<uint64_t>(v));
  return out;
}

// An output tensor of `dt` and `shape` with zeroed (or empty-string) elements.
inline OutputTensor output_tensor(const std::string& name, DataType dt, const Shape& shape) {
  OutputTensor o;
  o.name = name;
  o.dtype = dt;
  o.shape = shape;
  o.tensor = ov::Tensor(datatype_info(dt).element, ov::Shape(shape.begin(), shape.end()));
  return o;
}

// A parse result that must be INVALID_ARGUMENT with `needle` in its message.
inline void expect_invalid(const Status& st, const std::string& needle) {
  EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT) << "expected an error saying: " << needle;
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

// The fields of a serialized message; a failure if it is not well-formed.
inline std::vector<Field> decode_or_fail(const std::string& bytes) {
  std::vector<Field> fields;
  EXPECT_TRUE(decode(bytes, &fields)) << "not a well-formed message";
  return fields;
}

}  // namespace ovfast::testkit

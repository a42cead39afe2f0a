#include "ovfast/codec/tfs.hpp"

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "ovfast/codec/wire.hpp"

namespace ovfast {
namespace {

using wire::Reader;
using wire::Span;
using wire::WireType;

// TensorProto field numbers (tensorflow/core/framework/tensor.proto).
enum TensorField : uint32_t {
  kDtype = 1, kShape = 2, kContent = 4, kFloatVal = 5, kDoubleVal = 6, kIntVal = 7, kStringVal = 8,
  kInt64Val = 10, kBoolVal = 11, kHalfVal = 13, kUint32Val = 16, kUint64Val = 17,
};

// One TensorProto. Typed value lists are decoded from its message once the
// dtype is known (fields may come in any order); nothing is kept per value.
struct ParsedTensor {
  int tf_dtype = 0;
  Shape shape;
  const uint8_t* content = nullptr;
  size_t content_len = 0;
  bool has_content = false;
  const uint8_t* msg = nullptr;  // the TensorProto message
  size_t msg_len = 0;
  bool has_typed = false;        // a typed value list (anything but string_val) is present
  bool has_shape = false;
};

Status malformed(const std::string& what) {
  return invalid_argument("Malformed PredictRequest: " + what);
}

bool parse_dim(const uint8_t* d, size_t n, int64_t* size) {
  Reader r(d, n);
  uint32_t f; WireType t;
  *size = 0;
  while (r.next(&f, &t)) {
    if (f == 1 && t == wire::VARINT) {
      uint64_t v;
      if (!r.varint(&v)) return false;
      *size = static_cast<int64_t>(v);
    } else if (!r.skip(t)) {
      return false;
    }
  }
  return r.ok();
}

// False on malformed data; *too_many when the shape has more than max_dims dimensions.
bool parse_shape(const uint8_t* d, size_t n, Shape* shape, size_t max_dims, bool* too_many) {
  Reader r(d, n);
  uint32_t f; WireType t;
  shape->clear();
  while (r.next(&f, &t)) {
    if (f == 2 && t == wire::LEN) {
      const uint8_t* dd; size_t dn;
      if (!r.bytes(&dd, &dn)) return false;
      int64_t size;
      if (!parse_dim(dd, dn, &size)) return false;
      if (shape->size() >= max_dims) { *too_many = true; return r.fail(); }
      shape->push_back(size);
    } else if (!r.skip(t)) {  // unknown_rank (3) and anything else
      return false;
    }
  }
  return r.ok();
}

Status parse_tensor(const uint8_t* d, size_t n, const std::string& name, size_t max_dims, ParsedTensor* out) {
  out->msg = d;
  out->msg_len = n;
  Reader r(d, n);
  uint32_t f; WireType t;
  while (r.next(&f, &t)) {
    if (f == kDtype && t == wire::VARINT) {
      uint64_t v;
      if (!r.varint(&v)) break;
      out->tf_dtype = static_cast<int>(static_cast<int32_t>(v));
    } else if (f == kShape && t == wire::LEN) {
      const uint8_t* sd; size_t sn;
      bool too_many = false;
      if (!r.bytes(&sd, &sn)) break;
      if (!parse_shape(sd, sn, &out->shape, max_dims, &too_many)) {
        if (too_many)
          return invalid_argument(
              over_limit_message("dimensions in the shape of input " + name, max_dims, "--max_tensor_dims"));
        return malformed("inputs");
      }
      out->has_shape = true;
    } else if (f == kContent && t == wire::LEN) {
      // proto3 `bytes`: the last occurrence wins.
      if (!r.bytes(&out->content, &out->content_len)) break;
      out->has_content = true;
    } else if ((f >= kFloatVal && f <= kBoolVal) || f == kHalfVal || f == kUint32Val || f == kUint64Val) {
      Span s;
      if (!wire::read_span(r, f, t, &s)) break;
      out->has_typed |= f != kStringVal;
    } else if (!r.skip(t)) {
      break;
    }
  }
  return r.ok() ? Status::ok() : malformed("inputs");
}

// The values of `field` as T, into a buffer of exactly their size (counted first).
template <typename T>
bool collect(const ParsedTensor& pt, uint32_t field, WireType wt, std::vector<uint8_t>* buf, size_t* count) {
  size_t n = 0;
  if (!wire::for_each_scalar(pt.msg, pt.msg_len, field, wt, [&](uint64_t) { ++n; })) return false;
  buf->resize(n * sizeof(T));
  uint8_t* out = buf->data();
  wire::for_each_scalar(pt.msg, pt.msg_len, field, wt, [&](uint64_t v) {
    T x = std::is_same_v<T, bool> ? static_cast<T>(v != 0) : static_cast<T>(v);
    std::memcpy(out, &x, sizeof(T));
    out += sizeof(T);
  });
  *count = n;
  return true;
}

// Fills `in` from the typed value lists of `pt` (the non-tensor_content path).
Status decode_values(const ParsedTensor& pt, InputTensor* in) {
  std::vector<uint8_t>* buf = &in->owned;
  size_t count = 0;
  bool ok = true;
  switch (in->dtype) {
    case DataType::FP16:
    case DataType::BF16: ok = collect<uint16_t>(pt, kHalfVal, wire::VARINT, buf, &count); break;
    case DataType::FP32: ok = collect<uint32_t>(pt, kFloatVal, wire::FIXED32, buf, &count); break;
    case DataType::FP64: ok = collect<uint64_t>(pt, kDoubleVal, wire::FIXED64, buf, &count); break;
    case DataType::INT8: ok = collect<int8_t>(pt, kIntVal, wire::VARINT, buf, &count); break;
    case DataType::INT16: ok = collect<int16_t>(pt, kIntVal, wire::VARINT, buf, &count); break;
    case DataType::INT32: ok = collect<int32_t>(pt, kIntVal, wire::VARINT, buf, &count); break;
    case DataType::UINT8: ok = collect<uint8_t>(pt, kIntVal, wire::VARINT, buf, &count); break;
    case DataType::UINT16: ok = collect<uint16_t>(pt, kIntVal, wire::VARINT, buf, &count); break;
    case DataType::INT64: ok = collect<int64_t>(pt, kInt64Val, wire::VARINT, buf, &count); break;
    case DataType::UINT32: ok = collect<uint32_t>(pt, kUint32Val, wire::VARINT, buf, &count); break;
    case DataType::UINT64: ok = collect<uint64_t>(pt, kUint64Val, wire::VARINT, buf, &count); break;
    case DataType::BOOL: ok = collect<bool>(pt, kBoolVal, wire::VARINT, buf, &count); break;
    default:
      // INVALID dtype: validate() reports the precision mismatch first.
      break;
  }
  if (!ok) return malformed("invalid typed values of input " + in->name);
  in->has_typed_contents = true;
  in->typed_count = count;
  in->data = buf->empty() ? nullptr : buf->data();
  in->size = buf->size();
  return Status::ok();
}

Status to_input(const ParsedTensor& pt, InputTensor* in) {
  in->dtype = datatype_from_tf_enum(pt.tf_dtype);
  in->datatype_name = in->dtype == DataType::INVALID ? std::string("UNDEFINED")
                                                     : std::string(datatype_info(in->dtype).kserve_name);
  in->shape = pt.shape;
  in->has_shape = pt.has_shape;
  if (in->dtype == DataType::BYTES) {
    // NOTE: string_val is located (not copied) whatever the model input type is;
    // binary-image inputs (rank-4 numeric) are decoded from these views downstream.
    if (!BytesElements::in_field(pt.msg, pt.msg_len, 0, kStringVal, &in->bytes))
      return malformed("string_val of input " + in->name);
    in->typed_count = in->bytes.count();
    return Status::ok();
  }
  if (pt.has_content || !pt.has_typed) {
    // Zero-copy: the tensor views the request bytes.
    in->data = pt.content;
    in->size = pt.content_len;
    return Status::ok();
  }
  return decode_values(pt, in);
}

bool parse_model_spec(const uint8_t* d, size_t n, TfsModelSpec* spec) {
  Reader r(d, n);
  uint32_t f; WireType t;
  std::string_view sv;
  spec->present = true;
  while (r.next(&f, &t)) {
    if (f == 1 && t == wire::LEN) {
      if (!r.view(&sv)) return false;
      spec->name.assign(sv);
    } else if (f == 2 && t == wire::LEN) {  // google.protobuf.Int64Value
      const uint8_t* vd; size_t vn;
      if (!r.bytes(&vd, &vn)) return false;
      Reader vr(vd, vn);
      uint32_t vf; WireType vt;
      int64_t value = 0;
      while (vr.next(&vf, &vt)) {
        if (vf == 1 && vt == wire::VARINT) {
          uint64_t v;
          if (!vr.varint(&v)) return r.fail();
          value = static_cast<int64_t>(v);
        } else if (!vr.skip(vt)) {
          return r.fail();
        }
      }
      if (!vr.ok()) return r.fail();
      spec->version = value;
      spec->has_version = true;
    } else if (f == 3 && t == wire::LEN) {
      if (!r.view(&sv)) return false;
      spec->signature_name.assign(sv);
    } else if (f == 4 && t == wire::LEN) {
      if (!r.view(&sv)) return false;
      spec->version_label.assign(sv);
    } else if (!r.skip(t)) {
      return false;
    }
  }
  return r.ok();
}

// One `inputs` map entry: key = 1, value = 2.
Status parse_map_entry(const uint8_t* d, size_t n, std::string* key, ParsedTensor* value, size_t max_dims) {
  Reader r(d, n);
  uint32_t f; WireType t;
  std::string_view sv;
  const uint8_t* vd = nullptr; size_t vn = 0;
  bool has_value = false;
  while (r.next(&f, &t)) {
    if (f == 1 && t == wire::LEN) {
      if (!r.view(&sv)) break;
      key->assign(sv);
    } else if (f == 2 && t == wire::LEN) {
      if (!r.bytes(&vd, &vn)) break;
      has_value = true;  // a repeated value field replaces the earlier one
    } else if (!r.skip(t)) {
      break;
    }
  }
  if (!r.ok()) return malformed("inputs");
  // NOTE: the value is parsed after the key, so a limit error can name the input.
  return has_value ? parse_tensor(vd, vn, *key, max_dims, value) : Status::ok();
}

// --- encoding ---------------------------------------------------------------

size_t dim_msg_size(int64_t d) {
  return d == 0 ? 0 : wire::tag_size(1) + wire::varint_size(static_cast<uint64_t>(d));
}

size_t shape_msg_size(const Shape& s) {
  size_t n = 0;
  for (int64_t d : s) n += wire::len_field_size(2, dim_msg_size(d));
  return n;
}

// A sequence id goes out as uint64_val (packed varints), as OVMS sends it.
bool in_uint64_val(const OutputTensor& o) { return o.sequence_id && o.dtype == DataType::UINT64; }

size_t sequence_id_size(const OutputTensor& o) {
  size_t n = 0;
  const uint64_t* v = o.tensor.data<const uint64_t>();
  for (size_t k = 0; k < o.tensor.get_size(); ++k) n += wire::varint_size(v[k]);
  return n;
}

size_t data_size(const OutputTensor& o) {
  if (in_uint64_val(o)) return sequence_id_size(o);
  if (o.dtype != DataType::BYTES) return o.tensor.get_byte_size();
  size_t n = 0;
  const std::string* strs = o.tensor.data<std::string>();
  for (size_t k = 0; k < o.tensor.get_size(); ++k) n += wire::len_field_size(kStringVal, strs[k].size());
  return n;
}

size_t tensor_msg_size(const OutputTensor& o, size_t shape_size, size_t data) {
  int tf = datatype_info(o.dtype).tf_enum;
  size_t n = tf ? wire::tag_size(kDtype) + wire::varint_size(static_cast<uint64_t>(tf)) : 0;
  n += wire::len_field_size(kShape, shape_size);
  if (o.dtype == DataType::BYTES) return n + data;
  return n + (data ? wire::len_field_size(in_uint64_val(o) ? kUint64Val : kContent, data) : 0);
}

}  // namespace

DataType datatype_from_tf_enum(int tf_enum) {
  for (int i = 1; i <= static_cast<int>(DataType::BYTES); ++i) {
    const DataTypeInfo& info = datatype_info(static_cast<DataType>(i));
    if (info.tf_enum == tf_enum) return info.dtype;
  }
  return DataType::INVALID;
}

Status parse_tfs_predict_request(const uint8_t* buf, size_t len, TfsModelSpec* spec, InferJob* job,
                                 const DecodeLimits& limits) {
  // The map entries are counted (and bounded) before any is parsed.
  size_t entries = 0;
  {
    Reader scan(buf, len);
    uint32_t f; WireType t;
    while (scan.next(&f, &t) && scan.skip(t)) entries += f == 2;
  }
  if (entries > limits.max_inputs)
    return invalid_argument(over_limit_message("inputs", limits.max_inputs, "--max_request_inputs"));
  job->inputs.reserve(entries);
  Reader r(buf, len);
  uint32_t f; WireType t;
  std::string_view sv;
  while (r.next(&f, &t)) {
    if (f == 1 && t == wire::LEN) {
      const uint8_t* d; size_t n;
      if (!r.bytes(&d, &n) || !parse_model_spec(d, n, spec)) return malformed("model_spec");
    } else if (f == 2 && t == wire::LEN) {
      const uint8_t* d; size_t n;
      if (!r.bytes(&d, &n)) return malformed("inputs");
      std::string key;
      ParsedTensor pt;
      OVF_RETURN_IF_ERROR(parse_map_entry(d, n, &key, &pt, limits.max_dims));
      InputTensor in;
      in.name = std::move(key);
      OVF_RETURN_IF_ERROR(to_input(pt, &in));
      InputTensor* slot = nullptr;
      for (auto& existing : job->inputs)
        if (existing.name == in.name) { slot = &existing; break; }
      if (slot) *slot = std::move(in); else job->inputs.push_back(std::move(in));
    } else if (f == 3 && t == wire::LEN) {
      if (!r.view(&sv)) return malformed("output_filter");  // ignored, as OVMS
    } else if (!r.skip(t)) {
      return malformed("unknown field");
    }
  }
  if (!r.ok()) return malformed("truncated or invalid wire data");
  // proto3 `string` fields must be valid UTF-8 (they become Python str).
  bool utf8 = wire::valid_utf8(spec->name) && wire::valid_utf8(spec->signature_name) &&
              wire::valid_utf8(spec->version_label);
  for (const auto& in : job->inputs) utf8 = utf8 && wire::valid_utf8(in.name);
  if (!utf8) return malformed("a string field is not valid UTF-8");
  job->model_name = spec->name;
  return Status::ok();
}

std::string encode_tfs_response(const std::string& model_name, const std::string& version,
                                const std::vector<OutputTensor>& outputs) {
  using wire::len_field_size;
  struct Sizes { size_t shape, data, tensor, entry; };
  std::vector<Sizes> sizes(outputs.size());
  size_t total = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputTensor& o = outputs[i];
    Sizes& s = sizes[i];
    s.shape = shape_msg_size(o.shape);
    s.data = data_size(o);
    s.tensor = tensor_msg_size(o, s.shape, s.data);
    s.entry = len_field_size(1, o.name.size()) + len_field_size(2, s.tensor);
    total += len_field_size(1, s.entry);
  }
  char* end = nullptr;
  long long v = version.empty() ? 0 : std::strtoll(version.c_str(), &end, 10);
  const bool has_version = v > 0 && end && *end == '\0';
  size_t version_msg = has_version ? wire::tag_size(1) + wire::varint_size(static_cast<uint64_t>(v)) : 0;
  size_t spec_msg = (model_name.empty() ? 0 : len_field_size(1, model_name.size())) +
                    (has_version ? len_field_size(2, version_msg) : 0);
  if (spec_msg) total += len_field_size(2, spec_msg);

  std::string out;
  out.resize(total);
  wire::Writer w(reinterpret_cast<uint8_t*>(out.data()));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputTensor& o = outputs[i];
    const Sizes& s = sizes[i];
    w.len_prefix(1, s.entry);
    w.string(1, o.name);
    w.len_prefix(2, s.tensor);
    int tf = datatype_info(o.dtype).tf_enum;
    if (tf) { w.tag(kDtype, wire::VARINT); w.varint(static_cast<uint64_t>(tf)); }
    w.len_prefix(kShape, s.shape);
    for (int64_t d : o.shape) {
      w.len_prefix(2, dim_msg_size(d));
      if (d) { w.tag(1, wire::VARINT); w.varint(static_cast<uint64_t>(d)); }
    }
    if (o.dtype == DataType::BYTES) {
      const std::string* strs = o.tensor.data<std::string>();
      for (size_t k = 0; k < o.tensor.get_size(); ++k) w.string(kStringVal, strs[k]);
    } else if (in_uint64_val(o)) {
      w.len_prefix(kUint64Val, s.data);
      const uint64_t* v = o.tensor.data<const uint64_t>();
      for (size_t k = 0; k < o.tensor.get_size(); ++k) w.varint(v[k]);
    } else if (s.data) {
      w.len_prefix(kContent, s.data);
      w.raw(o.tensor.data(), s.data);
    }
  }
  if (spec_msg) {
    w.len_prefix(2, spec_msg);
    if (!model_name.empty()) w.string(1, model_name);
    if (has_version) {
      w.len_prefix(2, version_msg);
      w.tag(1, wire::VARINT);
      w.varint(static_cast<uint64_t>(v));
    }
  }
  return out;
}

}  // namespace ovfast

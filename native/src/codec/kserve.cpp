#include "ovfast/codec/kserve.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "ovfast/codec/wire.hpp"
#include "kserve_sequence.hpp"

namespace ovfast {
namespace {

using wire::Reader;
using wire::Span;
using wire::WireType;

// One `inputs` entry: the tensor, and its InferInputTensor message, from
// which typed contents are decoded once the datatype is known (no per-value
// bookkeeping: the message is walked again instead).
struct PendingInput {
  InputTensor tensor;
  const uint8_t* msg = nullptr;
  size_t msg_len = 0;
};

Status malformed(const char* what) {
  return invalid_argument(std::string("Malformed ModelInferRequest: ") + what);
}

// What one parse may still take before a limit is crossed.
struct Budget {
  const DecodeLimits& limits;
  size_t parameters = 0;  // parameters seen so far (request, inputs, outputs)
  Status add_parameter() {
    if (++parameters > limits.max_parameters)
      return invalid_argument(over_limit_message("parameters", limits.max_parameters, "--max_request_parameters"));
    return Status::ok();
  }
};

Status dims_over_limit(const InputTensor& t, size_t limit) {
  return invalid_argument(
      over_limit_message("dimensions in the shape of input " + t.name, limit, "--max_tensor_dims"));
}

// A `shape` occurrence (packed or one varint); the dimension count is checked before the shape grows.
Status parse_shape_field(Reader& r, WireType t, InputTensor* in, size_t max_dims) {
  Shape* shape = &in->shape;
  if (t == wire::VARINT) {
    uint64_t v;
    if (!r.varint(&v)) return malformed("inputs");
    if (shape->size() >= max_dims) return dims_over_limit(*in, max_dims);
    shape->push_back(static_cast<int64_t>(v));
    return Status::ok();
  }
  const uint8_t* d; size_t n;
  if (t != wire::LEN || !r.bytes(&d, &n)) return malformed("inputs");
  const size_t count = wire::packed_varint_count(d, n);
  if (count > max_dims - std::min(max_dims, shape->size())) return dims_over_limit(*in, max_dims);
  shape->reserve(shape->size() + count);
  Reader inner(d, n);
  while (!inner.done()) {
    uint64_t v;
    if (!inner.varint(&v)) return malformed("inputs");
    shape->push_back(static_cast<int64_t>(v));
  }
  return Status::ok();
}

// Wire structure of an InferTensorContents (values are decoded later).
bool well_formed(const uint8_t* d, size_t n) {
  return wire::for_each_occurrence(d, n, 0, [](const Span&) { return true; });
}

Status parse_input(const uint8_t* d, size_t n, PendingInput* in, Budget* budget) {
  in->msg = d;
  in->msg_len = n;
  Reader r(d, n);
  uint32_t f; WireType t;
  std::string_view sv;
  while (r.next(&f, &t)) {
    switch (f) {
      case 1: if (t != wire::LEN || !r.view(&sv)) return malformed("inputs"); in->tensor.name.assign(sv); break;
      case 2: if (t != wire::LEN || !r.view(&sv)) return malformed("inputs"); in->tensor.datatype_name.assign(sv); break;
      case 3: OVF_RETURN_IF_ERROR(parse_shape_field(r, t, &in->tensor, budget->limits.max_dims)); break;
      case 4:
        if (!r.skip(t)) return malformed("inputs");
        OVF_RETURN_IF_ERROR(budget->add_parameter());
        break;
      case 5: {
        const uint8_t* cd; size_t cn;
        if (t != wire::LEN || !r.bytes(&cd, &cn) || !well_formed(cd, cn)) return malformed("inputs");
        in->tensor.has_typed_contents = true;
        break;
      }
      default: if (!r.skip(t)) return malformed("inputs");
    }
  }
  return r.ok() ? Status::ok() : malformed("inputs");
}

Status parse_output(const uint8_t* d, size_t n, std::string* name, Budget* budget) {
  Reader r(d, n);
  uint32_t f; WireType t;
  std::string_view sv;
  while (r.next(&f, &t)) {
    if (f == 1 && t == wire::LEN) {
      if (!r.view(&sv)) return malformed("outputs");
      name->assign(sv);
    } else {
      if (!r.skip(t)) return malformed("outputs");
      if (f == 2) OVF_RETURN_IF_ERROR(budget->add_parameter());
    }
  }
  return r.ok() ? Status::ok() : malformed("outputs");
}

// Calls fn(data, len) for each `contents` message of the input; false on a
// malformed one or when fn returns false.
template <typename Fn>
bool each_contents(const PendingInput& in, Fn&& fn) {
  return wire::for_each_occurrence(in.msg, in.msg_len, 5, [&](const Span& s) {
    return s.type == wire::LEN && fn(s.data, s.len);
  });
}

// Decodes the values of `field` into `buf` as T: counted first, then stored
// into a buffer of exactly that size (no growth, no per-value bookkeeping).
template <typename T>
bool gather(const PendingInput& in, uint32_t field, WireType wt, std::vector<uint8_t>& buf, size_t* count) {
  size_t n = 0;
  auto counter = [&](uint64_t) { ++n; };
  if (!each_contents(in, [&](const uint8_t* d, size_t len) { return wire::for_each_scalar(d, len, field, wt, counter); }))
    return false;
  buf.resize(n * sizeof(T));
  uint8_t* out = buf.data();
  auto put = [&](uint64_t v) {
    T x = std::is_same_v<T, bool> ? static_cast<T>(v != 0) : static_cast<T>(v);
    std::memcpy(out, &x, sizeof(T));
    out += sizeof(T);
  };
  each_contents(in, [&](const uint8_t* d, size_t len) { return wire::for_each_scalar(d, len, field, wt, put); });
  *count = n;
  return true;
}

Status decode_typed(PendingInput& in) {
  InputTensor& t = in.tensor;
  auto& buf = t.owned;
  size_t count = 0;
  bool ok = true;
  auto bad = [&]() { return malformed(("invalid contents of input " + t.name).c_str()); };
  switch (t.dtype) {
    case DataType::BOOL: ok = gather<bool>(in, 1, wire::VARINT, buf, &count); break;
    case DataType::INT8: ok = gather<int8_t>(in, 2, wire::VARINT, buf, &count); break;
    case DataType::INT16: ok = gather<int16_t>(in, 2, wire::VARINT, buf, &count); break;
    case DataType::INT32: ok = gather<int32_t>(in, 2, wire::VARINT, buf, &count); break;
    case DataType::INT64: ok = gather<int64_t>(in, 3, wire::VARINT, buf, &count); break;
    case DataType::UINT8: ok = gather<uint8_t>(in, 4, wire::VARINT, buf, &count); break;
    case DataType::UINT16: ok = gather<uint16_t>(in, 4, wire::VARINT, buf, &count); break;
    case DataType::UINT32: ok = gather<uint32_t>(in, 4, wire::VARINT, buf, &count); break;
    case DataType::UINT64: ok = gather<uint64_t>(in, 5, wire::VARINT, buf, &count); break;
    case DataType::FP32:
    case DataType::FP64: {
      const uint32_t field = t.dtype == DataType::FP32 ? 6 : 7;
      const size_t item = t.dtype == DataType::FP32 ? 4 : 8;
      // NOTE: a single packed occurrence is already little-endian floats: view it in place.
      size_t occurrences = 0; Span only{};
      ok = each_contents(in, [&](const uint8_t* d, size_t len) {
        return wire::for_each_occurrence(d, len, field, [&](const Span& s) { ++occurrences; only = s; return true; });
      });
      if (ok && occurrences == 1 && only.type == wire::LEN) {
        if (only.len % item) return bad();
        t.data = only.data; t.size = only.len; t.typed_count = only.len / item;
        return Status::ok();
      }
      ok = ok && (item == 4 ? gather<uint32_t>(in, field, wire::FIXED32, buf, &count)
                            : gather<uint64_t>(in, field, wire::FIXED64, buf, &count));
      break;
    }
    case DataType::BYTES:
      // Located and counted only: the elements are written where they go once the job is validated.
      if (!BytesElements::in_field(in.msg, in.msg_len, 5, 8, &t.bytes)) return bad();
      t.typed_count = t.bytes.count();
      return Status::ok();
    case DataType::FP16:
    case DataType::BF16:
      return invalid_argument("Invalid contents of input " + t.name + " - " + t.datatype_name +
                              " data can only be sent in raw_input_contents");
    default:
      return invalid_argument("Invalid input precision - unsupported datatype " + t.datatype_name + "; input name: " + t.name);
  }
  if (!ok) return bad();
  t.data = buf.data();
  t.size = buf.size();
  t.typed_count = count;
  return Status::ok();
}

// Counts the repeated top-level fields and checks them against the limits
// before anything is allocated for them. Malformed wire data is left to the
// parse proper, which names the field.
Status check_counts(const uint8_t* buf, size_t len, Budget* budget, size_t counts[8]) {
  Reader r(buf, len);
  uint32_t f; WireType t;
  while (r.next(&f, &t) && r.skip(t))
    if (f < 8) ++counts[f];
  const DecodeLimits& l = budget->limits;
  if (counts[5] > l.max_inputs)
    return invalid_argument(over_limit_message("inputs", l.max_inputs, "--max_request_inputs"));
  if (counts[7] > l.max_inputs)
    return invalid_argument(over_limit_message("raw_input_contents entries", l.max_inputs, "--max_request_inputs"));
  if (counts[6] > l.max_outputs)
    return invalid_argument(over_limit_message("outputs", l.max_outputs, "--max_request_outputs"));
  budget->parameters = counts[4];
  if (counts[4] > l.max_parameters)
    return invalid_argument(over_limit_message("parameters", l.max_parameters, "--max_request_parameters"));
  return Status::ok();
}

}  // namespace

Status parse_kserve_request(const uint8_t* buf, size_t len, InferJob* job, const DecodeLimits& limits) {
  Budget budget{limits};
  size_t counts[8] = {};
  OVF_RETURN_IF_ERROR(check_counts(buf, len, &budget, counts));
  Reader r(buf, len);
  uint32_t f; WireType t;
  std::string_view sv;
  std::vector<PendingInput> inputs;
  std::vector<std::pair<const uint8_t*, size_t>> raw;
  // NOTE: the counts are bounded now; reserving them exactly is what keeps a
  // request of many tiny entries from costing a multiple of its size.
  inputs.reserve(counts[5]);
  raw.reserve(counts[7]);
  job->requested_outputs.reserve(job->requested_outputs.size() + counts[6]);
  while (r.next(&f, &t)) {
    switch (f) {
      case 1: if (t != wire::LEN || !r.view(&sv)) return malformed("model_name"); job->model_name.assign(sv); break;
      case 2: if (t != wire::LEN || !r.view(&sv)) return malformed("model_version"); job->model_version.assign(sv); break;
      case 3: if (t != wire::LEN || !r.view(&sv)) return malformed("id"); job->id.assign(sv); break;
      case 4: {  // parameters: only the sequence keys are acted on
        const uint8_t* d; size_t n;
        bool bad = false;
        if (t != wire::LEN || !r.bytes(&d, &n)) return malformed("parameters");
        OVF_RETURN_IF_ERROR(parse_sequence_parameter(d, n, &job->sequence, &bad));
        if (bad) return malformed("parameters");
        break;
      }
      case 5: {
        const uint8_t* d; size_t n;
        if (t != wire::LEN || !r.bytes(&d, &n)) return malformed("inputs");
        inputs.emplace_back();
        OVF_RETURN_IF_ERROR(parse_input(d, n, &inputs.back(), &budget));
        break;
      }
      case 6: {
        const uint8_t* d; size_t n;
        if (t != wire::LEN || !r.bytes(&d, &n)) return malformed("outputs");
        std::string name;
        OVF_RETURN_IF_ERROR(parse_output(d, n, &name, &budget));
        job->requested_outputs.push_back(std::move(name));
        break;
      }
      case 7: {
        const uint8_t* d; size_t n;
        if (t != wire::LEN || !r.bytes(&d, &n)) return malformed("raw_input_contents");
        raw.emplace_back(d, n);
        break;
      }
      default:
        if (!r.skip(t)) return malformed("unknown field");
    }
  }
  if (!r.ok()) return malformed("truncated or invalid wire data");
  bool utf8 = wire::valid_utf8(job->model_name) && wire::valid_utf8(job->model_version) && wire::valid_utf8(job->id);
  for (const auto& in : inputs)
    utf8 = utf8 && wire::valid_utf8(in.tensor.name) && wire::valid_utf8(in.tensor.datatype_name);
  for (const auto& name : job->requested_outputs) utf8 = utf8 && wire::valid_utf8(name);
  if (!utf8) return malformed("a string field is not valid UTF-8");

  if (!raw.empty()) {
    for (const PendingInput& in : inputs)
      if (in.tensor.has_typed_contents)
        return invalid_argument(
            "Passing buffers both in ModelInferRequest::InferInputTensor::contents and in "
            "ModelInferRequest::raw_input_contents is not allowed - input name: " + in.tensor.name);
  }
  if (!raw.empty() && raw.size() != inputs.size())
    return invalid_argument("Invalid message structure - raw_input_contents has " + std::to_string(raw.size()) +
                            " entries but the request has " + std::to_string(inputs.size()) +
                            " inputs; expected one raw buffer per input");
  job->inputs.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    PendingInput& in = inputs[i];
    InputTensor& tensor = in.tensor;
    tensor.dtype = datatype_from_name(tensor.datatype_name);
    if (tensor.dtype == DataType::INVALID)
      return invalid_argument("Invalid input precision - unsupported datatype '" + tensor.datatype_name +
                              "'; input name: " + tensor.name);
    if (!raw.empty()) {
      if (tensor.has_typed_contents)
        return invalid_argument(
            "Passing buffers both in ModelInferRequest::InferInputTensor::contents and in "
            "ModelInferRequest::raw_input_contents is not allowed - input name: " + tensor.name);
      if (tensor.dtype == DataType::BYTES) {
        OVF_RETURN_IF_ERROR(BytesElements::prefixed(raw[i].first, raw[i].second, tensor.name, &tensor.bytes));
      } else {
        tensor.data = raw[i].first;
        tensor.size = raw[i].second;
      }
    } else {
      OVF_RETURN_IF_ERROR(decode_typed(in));
    }
    job->inputs.push_back(std::move(tensor));
  }
  return Status::ok();
}

std::string encode_kserve_response(const std::string& model_name, const std::string& model_version,
                                   const std::string& id, const std::vector<OutputTensor>& outputs) {
  using wire::len_field_size;
  using wire::varint_size;
  struct Sizes { size_t tensor_msg, shape_payload, data; };
  std::vector<Sizes> sizes(outputs.size());
  size_t total = 0;
  if (!model_name.empty()) total += len_field_size(1, model_name.size());
  if (!model_version.empty()) total += len_field_size(2, model_version.size());
  if (!id.empty()) total += len_field_size(3, id.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputTensor& o = outputs[i];
    if (o.sequence_id) {  // a response parameter, not an output
      total += sequence_parameter_size(o);
      continue;
    }
    Sizes& s = sizes[i];
    s.shape_payload = 0;
    for (int64_t d : o.shape) s.shape_payload += varint_size(static_cast<uint64_t>(d));
    const auto& dn = datatype_info(o.dtype).kserve_name;
    s.tensor_msg = len_field_size(1, o.name.size()) + len_field_size(2, dn.size()) +
                   (o.shape.empty() ? 0 : len_field_size(3, s.shape_payload));
    if (o.dtype == DataType::BYTES) {
      s.data = 0;
      const std::string* strs = o.tensor.data<std::string>();
      for (size_t k = 0; k < o.tensor.get_size(); ++k) s.data += 4 + strs[k].size();
    } else {
      s.data = o.tensor.get_byte_size();
    }
    total += len_field_size(5, s.tensor_msg) + len_field_size(6, s.data);
  }
  std::string out;
  out.resize(total);
  wire::Writer w(reinterpret_cast<uint8_t*>(out.data()));
  if (!model_name.empty()) w.string(1, model_name);
  if (!model_version.empty()) w.string(2, model_version);
  if (!id.empty()) w.string(3, id);
  for (const OutputTensor& o : outputs)
    if (o.sequence_id) write_sequence_parameter(w, o);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputTensor& o = outputs[i];
    if (o.sequence_id) continue;
    w.len_prefix(5, sizes[i].tensor_msg);
    w.string(1, o.name);
    w.string(2, datatype_info(o.dtype).kserve_name);
    if (!o.shape.empty()) {
      w.len_prefix(3, sizes[i].shape_payload);
      for (int64_t d : o.shape) w.varint(static_cast<uint64_t>(d));
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputTensor& o = outputs[i];
    if (o.sequence_id) continue;
    w.len_prefix(6, sizes[i].data);
    if (o.dtype == DataType::BYTES) {
      const std::string* strs = o.tensor.data<std::string>();
      for (size_t k = 0; k < o.tensor.get_size(); ++k) {
        uint32_t n = static_cast<uint32_t>(strs[k].size());
        w.raw(&n, 4);
        w.raw(strs[k].data(), n);
      }
    } else {
      w.raw(o.tensor.data(), sizes[i].data);
    }
  }
  return out;
}

std::string shape_to_string(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(s[i]);
  }
  return out + ")";
}

}  // namespace ovfast

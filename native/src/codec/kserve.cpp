#include "ovfast/codec/kserve.hpp"

#include <cstring>

#include "ovfast/codec/wire.hpp"
#include "kserve_sequence.hpp"

namespace ovfast {
namespace {

using wire::Reader;
using wire::Span;
using wire::WireType;
using wire::for_each_scalar;

struct PendingInput {
  InputTensor tensor;
  std::vector<Span> contents;
};

Status malformed(const char* what) {
  return invalid_argument(std::string("Malformed ModelInferRequest: ") + what);
}

bool parse_shape_field(Reader& r, WireType t, Shape* shape) {
  if (t == wire::VARINT) {
    uint64_t v;
    if (!r.varint(&v)) return false;
    shape->push_back(static_cast<int64_t>(v));
    return true;
  }
  if (t != wire::LEN) return r.fail();
  const uint8_t* d; size_t n;
  if (!r.bytes(&d, &n)) return false;
  Reader inner(d, n);
  while (!inner.done()) {
    uint64_t v;
    if (!inner.varint(&v)) return r.fail();
    shape->push_back(static_cast<int64_t>(v));
  }
  return true;
}

bool parse_contents(const uint8_t* d, size_t n, std::vector<Span>* out) {
  Reader r(d, n);
  uint32_t f; WireType t;
  while (r.next(&f, &t)) {
    Span s;
    if (!wire::read_span(r, f, t, &s)) return false;
    if (f >= 1 && f <= 8) out->push_back(s);
  }
  return r.ok();
}

bool parse_input(const uint8_t* d, size_t n, PendingInput* in) {
  Reader r(d, n);
  uint32_t f; WireType t;
  std::string_view sv;
  while (r.next(&f, &t)) {
    switch (f) {
      case 1: if (t != wire::LEN || !r.view(&sv)) return false; in->tensor.name.assign(sv); break;
      case 2: if (t != wire::LEN || !r.view(&sv)) return false; in->tensor.datatype_name.assign(sv); break;
      case 3: if (!parse_shape_field(r, t, &in->tensor.shape)) return false; break;
      case 5: {
        const uint8_t* cd; size_t cn;
        if (t != wire::LEN || !r.bytes(&cd, &cn)) return false;
        in->tensor.has_typed_contents = true;
        if (!parse_contents(cd, cn, &in->contents)) return false;
        break;
      }
      default: if (!r.skip(t)) return false;
    }
  }
  return r.ok();
}

bool parse_output_name(const uint8_t* d, size_t n, std::string* name) {
  Reader r(d, n);
  uint32_t f; WireType t;
  std::string_view sv;
  while (r.next(&f, &t)) {
    if (f == 1 && t == wire::LEN) {
      if (!r.view(&sv)) return false;
      name->assign(sv);
    } else if (!r.skip(t)) {
      return false;
    }
  }
  return r.ok();
}

template <typename T>
void store(std::vector<uint8_t>& buf, T v) {
  size_t at = buf.size();
  buf.resize(at + sizeof(T));
  std::memcpy(buf.data() + at, &v, sizeof(T));
}

Status decode_typed(PendingInput& in) {
  InputTensor& t = in.tensor;
  auto& buf = t.owned;
  size_t count = 0;
  bool ok = true;
  auto bad = [&]() { return malformed(("invalid contents of input " + t.name).c_str()); };
  switch (t.dtype) {
    case DataType::BOOL:
      ok = for_each_scalar(in.contents, 1, wire::VARINT, [&](uint64_t v) { buf.push_back(v ? 1 : 0); ++count; });
      break;
    case DataType::INT8:
      ok = for_each_scalar(in.contents, 2, wire::VARINT, [&](uint64_t v) { store<int8_t>(buf, static_cast<int8_t>(v)); ++count; });
      break;
    case DataType::INT16:
      ok = for_each_scalar(in.contents, 2, wire::VARINT, [&](uint64_t v) { store<int16_t>(buf, static_cast<int16_t>(v)); ++count; });
      break;
    case DataType::INT32:
      ok = for_each_scalar(in.contents, 2, wire::VARINT, [&](uint64_t v) { store<int32_t>(buf, static_cast<int32_t>(v)); ++count; });
      break;
    case DataType::INT64:
      ok = for_each_scalar(in.contents, 3, wire::VARINT, [&](uint64_t v) { store<int64_t>(buf, static_cast<int64_t>(v)); ++count; });
      break;
    case DataType::UINT8:
      ok = for_each_scalar(in.contents, 4, wire::VARINT, [&](uint64_t v) { store<uint8_t>(buf, static_cast<uint8_t>(v)); ++count; });
      break;
    case DataType::UINT16:
      ok = for_each_scalar(in.contents, 4, wire::VARINT, [&](uint64_t v) { store<uint16_t>(buf, static_cast<uint16_t>(v)); ++count; });
      break;
    case DataType::UINT32:
      ok = for_each_scalar(in.contents, 4, wire::VARINT, [&](uint64_t v) { store<uint32_t>(buf, static_cast<uint32_t>(v)); ++count; });
      break;
    case DataType::UINT64:
      ok = for_each_scalar(in.contents, 5, wire::VARINT, [&](uint64_t v) { store<uint64_t>(buf, v); ++count; });
      break;
    case DataType::FP32: {
      // NOTE: a single packed occurrence is already little-endian floats: view it in place.
      size_t occurrences = 0; const Span* only = nullptr;
      for (const Span& s : in.contents) if (s.field == 6) { ++occurrences; only = &s; }
      if (occurrences == 1 && only->type == wire::LEN) {
        if (only->len % 4) return bad();
        t.data = only->data; t.size = only->len; t.typed_count = only->len / 4;
        return Status::ok();
      }
      ok = for_each_scalar(in.contents, 6, wire::FIXED32, [&](uint64_t v) { store<uint32_t>(buf, static_cast<uint32_t>(v)); ++count; });
      break;
    }
    case DataType::FP64: {
      size_t occurrences = 0; const Span* only = nullptr;
      for (const Span& s : in.contents) if (s.field == 7) { ++occurrences; only = &s; }
      if (occurrences == 1 && only->type == wire::LEN) {
        if (only->len % 8) return bad();
        t.data = only->data; t.size = only->len; t.typed_count = only->len / 8;
        return Status::ok();
      }
      ok = for_each_scalar(in.contents, 7, wire::FIXED64, [&](uint64_t v) { store<uint64_t>(buf, v); ++count; });
      break;
    }
    case DataType::BYTES:
      for (const Span& s : in.contents) {
        if (s.field != 8) continue;
        if (s.type != wire::LEN) return bad();
        t.strings.emplace_back(reinterpret_cast<const char*>(s.data), s.len);
      }
      t.typed_count = t.strings.size();
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

}  // namespace

Status split_bytes_elements(const uint8_t* data, size_t size, std::vector<std::string>* out,
                            const std::string& input_name) {
  size_t pos = 0;
  while (pos < size) {
    if (size - pos < 4)
      return invalid_argument("Invalid BYTES content of input " + input_name +
                              " - truncated 4-byte length prefix at offset " + std::to_string(pos));
    uint32_t n;
    std::memcpy(&n, data + pos, 4);
    pos += 4;
    if (n > size - pos)
      return invalid_argument("Invalid BYTES content of input " + input_name + " - element of " +
                              std::to_string(n) + " bytes at offset " + std::to_string(pos - 4) +
                              " exceeds the buffer");
    out->emplace_back(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
  }
  return Status::ok();
}

Status parse_kserve_request(const uint8_t* buf, size_t len, InferJob* job) {
  Reader r(buf, len);
  uint32_t f; WireType t;
  std::string_view sv;
  std::vector<PendingInput> inputs;
  std::vector<std::pair<const uint8_t*, size_t>> raw;
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
        if (!parse_input(d, n, &inputs.back())) return malformed("inputs");
        break;
      }
      case 6: {
        const uint8_t* d; size_t n;
        if (t != wire::LEN || !r.bytes(&d, &n)) return malformed("outputs");
        std::string name;
        if (!parse_output_name(d, n, &name)) return malformed("outputs");
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
        OVF_RETURN_IF_ERROR(split_bytes_elements(raw[i].first, raw[i].second, &tensor.strings, tensor.name));
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

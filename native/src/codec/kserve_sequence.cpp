#include "kserve_sequence.hpp"

#include <limits>
#include <string>
#include <string_view>

namespace ovfast {
namespace {

using wire::Reader;
using wire::WireType;

// InferParameter oneof field numbers.
enum ParamField : uint32_t { kBool = 1, kInt64 = 2, kString = 3, kDouble = 4, kUint64 = 5 };
constexpr std::string_view kId = "sequence_id", kStart = "sequence_start", kEnd = "sequence_end";

struct Value {
  uint32_t field = 0;  // 0: no value set
  uint64_t number = 0;
  std::string_view text;
};

bool parse_value(const uint8_t* d, size_t n, Value* v) {
  Reader r(d, n);
  uint32_t f; WireType t;
  while (r.next(&f, &t)) {
    if ((f == kBool || f == kInt64 || f == kUint64) && t == wire::VARINT) {
      if (!r.varint(&v->number)) return false;
      v->field = f;
    } else if (f == kString && t == wire::LEN) {
      if (!r.view(&v->text)) return false;
      v->field = f;
    } else if (f == kDouble && t == wire::FIXED64) {
      if (!r.skip(t)) return false;
      v->field = f;
    } else if (!r.skip(t)) {
      return false;
    }
  }
  return r.ok();
}

size_t value_size(const OutputTensor& id) {
  if (id.dtype == DataType::BYTES) return wire::len_field_size(kString, id.tensor.data<std::string>()[0].size());
  const uint64_t v = id.tensor.data<const uint64_t>()[0];
  // NOTE: int64_param as Triton's clients read it; ids past INT64_MAX go out as uint64_param.
  return wire::tag_size(v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? kUint64 : kInt64) +
         wire::varint_size(v);
}

size_t entry_size(const OutputTensor& id) {
  return wire::len_field_size(1, kId.size()) + wire::len_field_size(2, value_size(id));
}

}  // namespace

Status parse_sequence_parameter(const uint8_t* d, size_t n, SequenceRequest* seq, bool* malformed) {
  Reader r(d, n);
  uint32_t f; WireType t;
  std::string_view key;
  Value value;
  bool has_value = false;
  while (r.next(&f, &t)) {
    if (f == 1 && t == wire::LEN) {
      if (!r.view(&key)) break;
    } else if (f == 2 && t == wire::LEN) {
      const uint8_t* vd; size_t vn;
      if (!r.bytes(&vd, &vn)) break;
      value = Value();
      if (!parse_value(vd, vn, &value)) { r.fail(); break; }
      has_value = true;
    } else if (!r.skip(t)) {
      break;
    }
  }
  if (!r.ok()) {
    *malformed = true;
    return Status::ok();
  }
  if (key == kId) {
    seq->given = true;
    if (value.field == kString) {
      if (!wire::valid_utf8(value.text)) { *malformed = true; return Status::ok(); }
      seq->id_string.assign(value.text);
      seq->id = 0;
    } else if (value.field == kInt64 && static_cast<int64_t>(value.number) < 0) {
      return invalid_argument("Invalid sequence_id parameter - a sequence id cannot be negative");
    } else if (value.field == kInt64 || value.field == kUint64) {
      seq->id = value.number;
      seq->id_string.clear();
    } else if (has_value) {
      return invalid_argument("Invalid sequence_id parameter - expected an integer or a string value");
    }
  } else if (key == kStart || key == kEnd) {
    seq->given = true;
    if (value.field != kBool)
      return invalid_argument("Invalid " + std::string(key) + " parameter - expected a bool value");
    (key == kStart ? seq->start : seq->end) = value.number != 0;
  }
  return Status::ok();
}

size_t sequence_parameter_size(const OutputTensor& id) { return wire::len_field_size(4, entry_size(id)); }

void write_sequence_parameter(wire::Writer& w, const OutputTensor& id) {
  w.len_prefix(4, entry_size(id));
  w.string(1, kId);
  w.len_prefix(2, value_size(id));
  if (id.dtype == DataType::BYTES) {
    w.string(kString, id.tensor.data<std::string>()[0]);
    return;
  }
  const uint64_t v = id.tensor.data<const uint64_t>()[0];
  w.tag(v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? kUint64 : kInt64, wire::VARINT);
  w.varint(v);
}

}  // namespace ovfast

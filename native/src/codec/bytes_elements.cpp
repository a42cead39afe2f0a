#include "ovfast/bytes_elements.hpp"

namespace ovfast {
namespace {

// Bytes a std::string keeps inline (libstdc++: 15 characters); a longer
// element is copied to the heap (its length plus the terminator).
constexpr size_t kInlineChars = 15;

size_t heap_bytes(size_t len) { return len > kInlineChars ? len + 1 : 0; }

}  // namespace

Status BytesElements::prefixed(const uint8_t* data, size_t size, const std::string& input_name, BytesElements* out) {
  BytesElements e;
  e.layout_ = Layout::PREFIXED;
  e.data_ = data;
  e.size_ = size;
  for (size_t pos = 0; pos < size;) {
    if (size - pos < 4)
      return invalid_argument("Invalid BYTES content of input " + input_name +
                              " - truncated 4-byte length prefix at offset " + std::to_string(pos));
    uint32_t n;
    std::memcpy(&n, data + pos, 4);
    if (n > size - pos - 4)
      return invalid_argument("Invalid BYTES content of input " + input_name + " - element of " + std::to_string(n) +
                              " bytes at offset " + std::to_string(pos) + " exceeds the buffer");
    pos += 4 + static_cast<size_t>(n);
    ++e.count_;
    e.bytes_ += n;
    e.long_bytes_ += heap_bytes(n);
  }
  *out = e;
  return Status::ok();
}

bool BytesElements::in_field(const uint8_t* msg, size_t len, uint32_t outer, uint32_t field, BytesElements* out) {
  BytesElements e;
  e.layout_ = Layout::FIELD;
  e.data_ = msg;
  e.size_ = len;
  e.outer_ = outer;
  e.field_ = field;
  const bool ok = e.walk_field([&](std::string_view s) {
    ++e.count_;
    e.bytes_ += s.size();
    e.long_bytes_ += heap_bytes(s.size());
  });
  if (!ok) return false;
  *out = e;
  return true;
}

size_t BytesElements::string_tensor_bytes() const { return count_ * sizeof(std::string) + long_bytes_; }

void BytesElements::write_to(std::string* dst) const {
  for_each([&](std::string_view s) { (dst++)->assign(s.data(), s.size()); });
}

std::vector<std::string_view> BytesElements::views() const {
  std::vector<std::string_view> out;
  out.reserve(count_);
  for_each([&](std::string_view s) { out.push_back(s); });
  return out;
}

}  // namespace ovfast

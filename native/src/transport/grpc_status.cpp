#include "ovfast/transport/grpc_status.hpp"

#include <algorithm>

#include "ovfast/codec/wire.hpp"

namespace ovfast {

int grpc_status_code(StatusCode code) {
  // grpc::StatusCode values (grpcpp/support/status_code_enum.h), written out
  // so that the core needs no gRPC header.
  switch (code) {
    case StatusCode::OK: return 0;
    case StatusCode::CANCELLED: return 1;
    case StatusCode::UNKNOWN: return 2;
    case StatusCode::INVALID_ARGUMENT: return 3;
    case StatusCode::DEADLINE_EXCEEDED: return 4;
    case StatusCode::NOT_FOUND: return 5;
    case StatusCode::ALREADY_EXISTS: return 6;
    case StatusCode::RESOURCE_EXHAUSTED: return 8;
    case StatusCode::FAILED_PRECONDITION: return 9;
    case StatusCode::ABORTED: return 10;
    case StatusCode::UNSUPPORTED: return 12;  // UNIMPLEMENTED
    case StatusCode::INTERNAL: return 13;
    case StatusCode::UNAVAILABLE: return 14;
  }
  return 2;
}

std::string printable_message(std::string_view message) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const uint8_t*>(message.data());
  const auto* end = p + message.size();
  std::string out;
  out.reserve(std::min<size_t>(message.size(), 4 * kMaxClientMessage));
  size_t chars = 0;  // as Python counts them: a UTF-8 sequence is one, an \xNN escape four
  while (p < end) {
    size_t n = wire::utf8_sequence_size(p, end);
    const size_t width = n > 0 ? 1 : 4;
    if (chars + width <= kMaxClientMessage) {
      if (n > 0) {
        out.append(reinterpret_cast<const char*>(p), n);
      } else {
        // NOTE: one byte at a time, as Python: the bytes it folds into one error
        // are continuation bytes, which never start a sequence here either.
        out += "\\x";
        out += kHex[*p >> 4];
        out += kHex[*p & 0xF];
      }
    }
    chars += width;
    p += n > 0 ? n : 1;
  }
  if (chars > kMaxClientMessage) {
    // NOTE: cut where Python's client_message cuts (an escape is not split there either way
    // for real messages, which quote names well inside the limit).
    out += "... (" + std::to_string(chars - kMaxClientMessage) + " more characters)";
  }
  return out;
}

}  // namespace ovfast

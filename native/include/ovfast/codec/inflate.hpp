// Bounded inflation of gRPC per-message-compressed payloads (grpc "deflate"
// = zlib stream, "gzip" = gzip stream). Pure functions, any thread.
//
// The limit applies to the decompressed size and is enforced while
// inflating: a first pass only measures (its memory is zlib's window), so a
// message that would inflate past `max_bytes` is refused before any output
// buffer exists; a second pass writes into a buffer of exactly the size
// measured. A compression bomb costs CPU, never memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ovfast/status.hpp"

namespace ovfast {

enum class MessageCompression { DEFLATE, GZIP };

struct ByteRange {
  const uint8_t* data;
  size_t size;
};

// Inflates the concatenation of `pieces` into `out` (replaced). Errors:
// RESOURCE_EXHAUSTED "Received message larger than max (...)" past
// `max_bytes`; INVALID_ARGUMENT when the data is not a complete stream of the
// given kind. `pieces` are only read; the caller keeps them alive.
Status inflate_message(const std::vector<ByteRange>& pieces, MessageCompression kind, size_t max_bytes,
                       std::string* out);

}  // namespace ovfast

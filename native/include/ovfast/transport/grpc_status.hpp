// How a native Status goes out on the gRPC wire, exactly as the Python
// handlers send it: the code through the one table (src/ovfast/errors.py
// ERROR_TABLE's gRPC column, mirrored here and nowhere else; a test compares
// the two), the message as Python's lenient decode of it. Pure functions.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "ovfast/status.hpp"

namespace ovfast {

// The grpc::StatusCode value for `code` (UNSUPPORTED -> UNIMPLEMENTED, ...);
// UNKNOWN's for a value outside the enum.
int grpc_status_code(StatusCode code);

// Status messages quote client strings: at most this many characters go out
// (src/ovfast/errors.py MAX_CLIENT_MESSAGE, the same cut).
inline constexpr size_t kMaxClientMessage = 1024;

// `message` with every byte that is not part of well-formed UTF-8 written as
// \xNN (Python's "backslashreplace"), cut after kMaxClientMessage characters
// as errors.client_message cuts: status messages may quote client bytes.
std::string printable_message(std::string_view message);

}  // namespace ovfast

// Bounds on what one decoded request may declare, checked by the wire codecs
// (kserve.hpp, tfs.hpp) before they allocate anything per entry, so the
// memory a request costs stays proportional to its bytes.
//
// Threads: the process-wide limits are set once at startup (the server's
// flags) before any request is parsed; set_decode_limits() and
// decode_limits() may race harmlessly (each field is read atomically), but a
// change is not guaranteed to reach a parse already under way.
#pragma once
#include <cstddef>
#include <string>

namespace ovfast {

struct DecodeLimits {
  // Defaults sit far above real models (Triton and OVMS set none; the widest
  // real models have tens of inputs and ranks under 10).
  size_t max_inputs = 4096;       // inputs in one request
  size_t max_outputs = 4096;      // requested outputs in one request
  size_t max_dims = 64;           // dimensions in one tensor shape
  size_t max_parameters = 1024;   // parameters in one request, its inputs and outputs together
};

// The limits every parse uses unless the caller passes its own.
DecodeLimits decode_limits();
void set_decode_limits(const DecodeLimits& limits);

// INVALID_ARGUMENT text for a request declaring more than `limit` `what`
// ("inputs", "outputs", "dimensions in the shape of input x", ...); names the
// server flag that raises it.
std::string over_limit_message(const std::string& what, size_t limit, const char* flag);

}  // namespace ovfast

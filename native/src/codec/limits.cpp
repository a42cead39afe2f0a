#include "ovfast/codec/limits.hpp"

#include <atomic>

namespace ovfast {
namespace {

// NOTE: one atomic per field: a reader never sees a torn value, and the
// writer runs once at startup, so no lock is worth its cost on the parse path.
std::atomic<size_t> g_inputs{DecodeLimits{}.max_inputs};
std::atomic<size_t> g_outputs{DecodeLimits{}.max_outputs};
std::atomic<size_t> g_dims{DecodeLimits{}.max_dims};
std::atomic<size_t> g_parameters{DecodeLimits{}.max_parameters};

}  // namespace

DecodeLimits decode_limits() {
  DecodeLimits l;
  l.max_inputs = g_inputs.load(std::memory_order_relaxed);
  l.max_outputs = g_outputs.load(std::memory_order_relaxed);
  l.max_dims = g_dims.load(std::memory_order_relaxed);
  l.max_parameters = g_parameters.load(std::memory_order_relaxed);
  return l;
}

void set_decode_limits(const DecodeLimits& l) {
  g_inputs.store(l.max_inputs, std::memory_order_relaxed);
  g_outputs.store(l.max_outputs, std::memory_order_relaxed);
  g_dims.store(l.max_dims, std::memory_order_relaxed);
  g_parameters.store(l.max_parameters, std::memory_order_relaxed);
}

std::string over_limit_message(const std::string& what, size_t limit, const char* flag) {
  return "Invalid request - more than " + std::to_string(limit) + " " + what + " (the server's limit, " + flag + ")";
}

}  // namespace ovfast

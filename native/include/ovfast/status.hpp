// Status: the error currency of the native core. Core functions return a
// Status; only native/bindings turns it into a Python exception, and only
// src/ovfast/errors.py maps codes to gRPC/HTTP statuses. A plain value type.
#pragma once
#include <string>
#include <utility>

namespace ovfast {

// Keep this list short: detail belongs in the message. The numeric values are
// part of the Python ABI (errors.py mirrors them); append only.
enum class StatusCode : int {
  OK = 0,
  INVALID_ARGUMENT = 1,
  NOT_FOUND = 2,            // no such model / version, and nothing else
  UNAVAILABLE = 3,
  ALREADY_EXISTS = 4,
  UNSUPPORTED = 5,
  RESOURCE_EXHAUSTED = 6,
  DEADLINE_EXCEEDED = 7,
  CANCELLED = 8,
  INTERNAL = 9,
  UNKNOWN = 10,
  FAILED_PRECONDITION = 11,
  // 12, 13: the transports' own access errors (src/ovfast/errors.py)
  ABORTED = 14,             // a pipeline stopped with nothing to do (OVMS PIPELINE_DEMULTIPLEXER_NO_RESULTS)
};

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::OK; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::OK;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::INVALID_ARGUMENT, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::INTERNAL, std::move(m)}; }

}  // namespace ovfast

// Returns early with the status of `expr` when it is not OK. Nothing else.
#define OVF_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::ovfast::Status ovf_status_ = (expr);     \
    if (!ovf_status_.is_ok()) return ovf_status_; \
  } while (0)

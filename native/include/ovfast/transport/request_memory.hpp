// RequestMemory: the server-wide bound on the bytes that requests in flight
// hold (--max_request_memory). A transport reserves a request's size once it
// has received it and releases it when the request is answered; a reservation
// that would take the total past the limit is refused, and the transport
// answers RESOURCE_EXHAUSTED / 503 and frees the request at once.
//
// Shared by every transport (the native gRPC server, the Python REST app);
// lock-free, callable from any thread.
#pragma once
#include <atomic>
#include <cstdint>

namespace ovfast {

class RequestMemory {
 public:
  // limit_bytes 0: no bound (reservations are still counted).
  explicit RequestMemory(int64_t limit_bytes) : limit_(limit_bytes < 0 ? 0 : limit_bytes) {}

  // Takes `bytes` (>= 0) if the total stays within the limit.
  bool try_reserve(int64_t bytes) noexcept {
    int64_t cur = used_.load(std::memory_order_relaxed);
    do {
      if (limit_ > 0 && cur + bytes > limit_) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    } while (!used_.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
    return true;
  }
  void release(int64_t bytes) noexcept { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  int64_t limit() const noexcept { return limit_; }
  int64_t in_use() const noexcept { return used_.load(std::memory_order_relaxed); }
  uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace ovfast

#include "ovfast/metrics.hpp"

#include <chrono>

#include "ovfast/request.hpp"

namespace ovfast {
namespace {

uint64_t since_ns(uint64_t start_ns) {
  const uint64_t now = now_ns();
  return now > start_ns ? now - start_ns : 0;
}

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

void ServableMetrics::record_request(int route, bool ok, uint64_t duration_us) noexcept {
  if (route < 0 || route >= 2 * kRouteCount) return;
  const bool node = route >= kRouteCount;  // node_route()
  if (node) route -= kRouteCount;
  size_t r = static_cast<size_t>(route);
  if (ok) {
    success[r].fetch_add(1, std::memory_order_relaxed);
    if (route_is_inference(route) && !node) request_us[static_cast<size_t>(route_interface(route))].observe(duration_us);
  } else {
    fail[r].fetch_add(1, std::memory_order_relaxed);
  }
}

void ServableMetrics::job_refused(int route, uint64_t received_ns) noexcept {
  record_request(route, false, 0);
  stats.fail_count.fetch_add(1, std::memory_order_relaxed);
  stats.fail_ns.fetch_add(since_ns(received_ns), std::memory_order_relaxed);
}

void ServableMetrics::job_accepted(int route) noexcept {
  if (route >= 0) current_requests.fetch_add(1, std::memory_order_relaxed);
}

void ServableMetrics::job_done(int route, uint64_t received_ns, bool ok, bool ran, uint64_t waited_us,
                               uint64_t inferred_us, uint64_t rows) noexcept {
  const uint64_t took_ns = since_ns(received_ns);
  if (route >= 0) {
    if (ran) {
      inference_us.observe(inferred_us);
      wait_us.observe(waited_us);
    }
    record_request(route, ok, took_ns / 1000);
    current_requests.fetch_sub(1, std::memory_order_relaxed);
  }
  if (ok) {
    stats.success_count.fetch_add(1, std::memory_order_relaxed);
    stats.success_ns.fetch_add(took_ns, std::memory_order_relaxed);
    stats.queue_ns.fetch_add(waited_us * 1000, std::memory_order_relaxed);
    stats.compute_ns.fetch_add(inferred_us * 1000, std::memory_order_relaxed);
    stats.inference_count.fetch_add(rows, std::memory_order_relaxed);
    stats.last_inference_ms.store(wall_ms(), std::memory_order_relaxed);
  } else {
    stats.fail_count.fetch_add(1, std::memory_order_relaxed);
    stats.fail_ns.fetch_add(took_ns, std::memory_order_relaxed);
  }
}

}  // namespace ovfast

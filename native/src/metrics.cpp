#include "ovfast/metrics.hpp"

namespace ovfast {

void ServableMetrics::record_request(int route, bool ok, uint64_t duration_us) noexcept {
  if (route < 0 || route >= kRouteCount) return;
  size_t r = static_cast<size_t>(route);
  if (ok) {
    success[r].fetch_add(1, std::memory_order_relaxed);
    if (route_is_inference(route)) request_us[static_cast<size_t>(route_interface(route))].observe(duration_us);
  } else {
    fail[r].fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace ovfast

#include "ovfast/metrics.hpp"

#include <algorithm>

namespace ovfast {

void Histogram::observe(uint64_t us) noexcept {
  // NOTE: 33 sorted bounds; a binary search is ~6 compares and branch-cheap.
  auto it = std::lower_bound(kHistogramBoundsUs.begin(), kHistogramBoundsUs.end(), us);
  size_t index = static_cast<size_t>(it - kHistogramBoundsUs.begin());  // == size() -> +Inf
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

void Histogram::read(std::array<uint64_t, kHistogramBuckets>* counts, uint64_t* sum_us) const noexcept {
  for (size_t i = 0; i < kHistogramBuckets; ++i) (*counts)[i] = counts_[i].load(std::memory_order_relaxed);
  *sum_us = sum_us_.load(std::memory_order_relaxed);
}

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

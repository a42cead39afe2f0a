#include "register_metrics.hpp"

#include <vector>

#include "ovfast/metrics.hpp"

namespace ovfast::bindings {
namespace {

template <typename H>
py::tuple histogram_tuple(const H& h) {
  typename H::Counts counts;
  uint64_t sum = 0;
  h.read(&counts, &sum);
  return py::make_tuple(std::vector<uint64_t>(counts.begin(), counts.end()), sum);
}

std::vector<uint64_t> counter_list(const std::array<std::atomic<uint64_t>, kRouteCount>& a) {
  std::vector<uint64_t> out(kRouteCount);
  for (size_t i = 0; i < out.size(); ++i) out[i] = a[i].load(std::memory_order_relaxed);
  return out;
}

}  // namespace

void register_metrics(py::module_& m, py::class_<PyServable>& servable) {
  m.attr("HISTOGRAM_BOUNDS_US") = std::vector<uint64_t>(kHistogramBoundsUs.begin(), kHistogramBoundsUs.end());
  m.attr("METRICS_ROUTE_COUNT") = kRouteCount;
  m.attr("BATCH_SIZE_BOUNDS") = std::vector<uint64_t>(kBatchSizeBounds.begin(), kBatchSizeBounds.end());

  servable.def(
      "metrics",
      [](PyServable& s) {
        ServableMetrics& mt = s.impl().metrics();
        return py::dict(
            py::arg("success") = counter_list(mt.success), py::arg("fail") = counter_list(mt.fail),
            py::arg("current_requests") = mt.current_requests.load(std::memory_order_relaxed),
            py::arg("inference_us") = histogram_tuple(mt.inference_us), py::arg("wait_us") = histogram_tuple(mt.wait_us),
            py::arg("request_us") = py::make_tuple(histogram_tuple(mt.request_us[0]), histogram_tuple(mt.request_us[1])),
            py::arg("batch_size") = histogram_tuple(mt.batch_size),
            py::arg("batch_queue_delay_us") = histogram_tuple(mt.batch_queue_delay_us),
            py::arg("batch_copied_bytes") = mt.batch_copied_bytes.load(std::memory_order_relaxed),
            py::arg("rejected_queue_full") = mt.rejected_queue_full.load(std::memory_order_relaxed));
      },
      "Scrape-time read of the request metrics: {success, fail: [per route], current_requests, "
      "inference_us, wait_us: (per-bucket counts incl. +Inf, sum_us), request_us: (gRPC, REST) histograms, "
      "batch_size: (counts over BATCH_SIZE_BOUNDS, sum of rows), batch_queue_delay_us, batch_copied_bytes: input "
      "bytes copied into batch tensors, rejected_queue_full: jobs refused by max_queue_size}. "
      "Bucket counts are per bucket, not cumulative.");
  servable.def(
      "count",
      [](PyServable& s, int route, bool ok, uint64_t duration_us) {
        if (route < 0 || route >= kRouteCount) throw py::value_error("metrics route out of range");
        s.impl().metrics().record_request(route, ok, duration_us);
      },
      py::arg("route"), py::arg("ok"), py::arg("duration_us") = 0,
      "Counts one request on `route` that did not go through submit (metadata calls, failures before submit).");
}

}  // namespace ovfast::bindings

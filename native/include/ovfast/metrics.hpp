// Per-servable request metrics: counters and fixed-bucket histograms behind
// the OVMS Prometheus families (spec/ovms.md §8).
//
// Threading: every update is a relaxed atomic add, safe from any thread
// (OpenVINO callback threads, the dispatcher, a binding call with the GIL
// released); no locks, no allocation. Reads happen only at scrape time and
// are not a consistent snapshot across fields (a scrape racing a request may
// see its bucket but not yet its sum), which Prometheus tolerates.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>

namespace ovfast {

// OVMS histogram upper bounds in microseconds: floor(10 * 1.8^i), i = 0..32.
// Written out rather than computed so no floating-point rounding can move a bound.
inline constexpr std::array<uint64_t, 33> kHistogramBoundsUs = {
    10ULL,        18ULL,        32ULL,        58ULL,        104ULL,       188ULL,       340ULL,
    612ULL,       1101ULL,      1983ULL,      3570ULL,      6426ULL,      11568ULL,     20822ULL,
    37481ULL,     67466ULL,     121439ULL,    218591ULL,    393464ULL,    708235ULL,    1274823ULL,
    2294682ULL,   4130428ULL,   7434771ULL,   13382588ULL,  24088659ULL,  43359586ULL,  78047255ULL,
    140485060ULL, 252873108ULL, 455171596ULL, 819308872ULL, 1474755971ULL};
// Finite buckets plus +Inf.
inline constexpr size_t kHistogramBuckets = kHistogramBoundsUs.size() + 1;

// Upper bounds of the dynamic batcher's batch-size histogram (rows per inference).
inline constexpr std::array<uint64_t, 18> kBatchSizeBounds = {1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64,
                                                              128, 256, 512, 1024};

// Fixed-bucket histogram over `Bounds` (sorted upper bounds) plus +Inf.
template <const auto& Bounds>
class BoundedHistogram {
 public:
  static constexpr size_t kBuckets = std::tuple_size_v<std::decay_t<decltype(Bounds)>> + 1;
  using Counts = std::array<uint64_t, kBuckets>;
  // Counts `v` in the first bucket whose bound is >= v (Prometheus `le`).
  void observe(uint64_t v) noexcept {
    // NOTE: a few dozen sorted bounds; a binary search is ~6 compares and branch-cheap.
    auto it = std::lower_bound(Bounds.begin(), Bounds.end(), v);
    counts_[static_cast<size_t>(it - Bounds.begin())].fetch_add(1, std::memory_order_relaxed);  // end -> +Inf
    sum_.fetch_add(v, std::memory_order_relaxed);
  }
  // Per-bucket counts (NOT cumulative; the last entry is the +Inf bucket) and the sum.
  void read(Counts* counts, uint64_t* sum) const noexcept {
    for (size_t i = 0; i < kBuckets; ++i) (*counts)[i] = counts_[i].load(std::memory_order_relaxed);
    *sum = sum_.load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> sum_{0};
};

using Histogram = BoundedHistogram<kHistogramBoundsUs>;           // microseconds
using BatchSizeHistogram = BoundedHistogram<kBatchSizeBounds>;   // rows

// A request route is one (api, interface, method) combination, numbered
//   route = api * 6 + interface * 3 + method
// with api 0 = TensorFlowServing, 1 = KServe; interface 0 = gRPC, 1 = REST;
// method 0 = inference (Predict / ModelInfer), 1 = metadata, 2 = status/ready.
// src/ovfast/observability/metrics.py holds the same table with the label values.
inline constexpr int kRouteCount = 12;
// A job with kNoRoute does no metrics work at all (metrics disabled, tests, internal callers).
inline constexpr int kNoRoute = -1;
// A model node's job inside a pipeline request that came in on `route`: the
// model counts it as OVMS does (spec/ovms.md §6.1, §8: its requests by the
// pipeline request's api/interface/method, its inference and wait times, its
// current requests) but not in its request time, which is the pipeline's.
inline constexpr int node_route(int route) { return route < 0 || route >= kRouteCount ? route : route + kRouteCount; }
inline constexpr int route_interface(int route) { return (route / 3) % 2; }
inline constexpr bool route_is_inference(int route) { return route % 3 == 0; }

// Triton ModelStatistics of one version: every job that reached the servable, whatever its route.
struct InferStatistics {
  std::atomic<uint64_t> success_count{0}, success_ns{0};  // receipt -> result handed to the sink
  std::atomic<uint64_t> fail_count{0}, fail_ns{0};
  std::atomic<uint64_t> queue_ns{0};         // successful jobs: waiting for an infer request / a batch
  std::atomic<uint64_t> compute_ns{0};       // successful jobs: inside OpenVINO
  std::atomic<uint64_t> inference_count{0};  // rows inferred with a batcher, else one per request
  std::atomic<uint64_t> execution_count{0};  // model executions (a batch is one)
  std::atomic<uint64_t> last_inference_ms{0};  // wall clock, ms since the Unix epoch; 0 = never
};

// Owned by a Servable; lives exactly as long as the compiled model version.
struct ServableMetrics {
  Histogram inference_us;               // time inside OpenVINO (start_async -> callback)
  Histogram wait_us;                    // time waiting for a free infer request
  std::array<Histogram, 2> request_us;  // by interface (0 gRPC, 1 REST): receipt -> response built
  std::array<std::atomic<uint64_t>, kRouteCount> success{};
  std::array<std::atomic<uint64_t>, kRouteCount> fail{};
  std::atomic<int64_t> current_requests{0};  // accepted by submit(), not yet completed
  // Dynamic batching (servables that batch): rows per dispatched inference, and per
  // request the time from entering the batch queue to its batch's dispatch.
  BatchSizeHistogram batch_size;
  Histogram batch_queue_delay_us;
  // Bytes copied to gather batch inputs (the batcher's one copy; a batch of one request copies nothing).
  std::atomic<uint64_t> batch_copied_bytes{0};
  // Jobs refused because max_queue_size jobs were already queued (also counted as failed).
  std::atomic<uint64_t> rejected_queue_full{0};

  InferStatistics stats;

  // Counts one finished request. For inference routes a successful request's
  // duration also goes into request_us. Out-of-range routes are ignored.
  void record_request(int route, bool ok, uint64_t duration_us) noexcept;

  // The life of one inference job, on every path (Prometheus by `route`, Triton statistics always):
  // refused at submit (never accepted);
  void job_refused(int route, uint64_t received_ns) noexcept;
  // taken by submit;
  void job_accepted(int route) noexcept;
  // finished: `ran` when it went through OpenVINO (its wait/infer times are real), `rows` inferred.
  void job_done(int route, uint64_t received_ns, bool ok, bool ran, uint64_t waited_us, uint64_t inferred_us,
                uint64_t rows) noexcept;
  // one model execution (a request, or a batch of them) that succeeded.
  void execution_done() noexcept { stats.execution_count.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace ovfast

// Request metrics (ovfast/metrics.hpp): histogram bucket edges (Prometheus
// `le`: a value equal to a bound counts in that bound's bucket), the OVMS
// bounds themselves, route bookkeeping in record_request, and exact counts
// under concurrent updates.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "ovfast/metrics.hpp"
#include "ovfast/request.hpp"

namespace ovfast {
namespace {

template <typename H>
typename H::Counts counts_of(const H& h, uint64_t* sum = nullptr) {
  typename H::Counts c;
  uint64_t s;
  h.read(&c, &s);
  if (sum) *sum = s;
  return c;
}

TEST(HistogramBounds, AreOvmsFloorOfTenTimesOnePointEightToTheI) {
  // 10 * 1.8^i = 10 * 9^i / 5^i, computed exactly in integers
  unsigned __int128 nine = 1, five = 1;
  for (size_t i = 0; i < kHistogramBoundsUs.size(); ++i) {
    EXPECT_EQ(kHistogramBoundsUs[i], static_cast<uint64_t>(10 * nine / five)) << "bound " << i;
    nine *= 9;
    five *= 5;
  }
  EXPECT_EQ(kHistogramBuckets, 34u);
}

TEST(Histogram, ValuesOnABoundCountInThatBucket) {
  Histogram h;
  h.observe(0);      // bucket 0 (le 10)
  h.observe(10);     // bucket 0
  h.observe(11);     // bucket 1 (le 18)
  h.observe(18);     // bucket 1
  h.observe(1101);   // bucket 8
  h.observe(kHistogramBoundsUs.back());      // last finite bucket
  h.observe(kHistogramBoundsUs.back() + 1);  // +Inf
  uint64_t sum;
  const auto c = counts_of(h, &sum);
  EXPECT_EQ(c[0], 2u);
  EXPECT_EQ(c[1], 2u);
  EXPECT_EQ(c[8], 1u);
  EXPECT_EQ(c[32], 1u);
  EXPECT_EQ(c[33], 1u);
  uint64_t total = 0;
  for (uint64_t n : c) total += n;
  EXPECT_EQ(total, 7u);
  EXPECT_EQ(sum, 0 + 10 + 11 + 18 + 1101 + 2 * kHistogramBoundsUs.back() + 1);
}

TEST(BatchSizeHistogram, RowsLandInTheirBucket) {
  BatchSizeHistogram h;
  for (uint64_t rows : {1, 8, 9, 12, 13, 1024, 1025}) h.observe(rows);
  const auto c = counts_of(h);
  EXPECT_EQ(c.size(), kBatchSizeBounds.size() + 1);
  EXPECT_EQ(c[0], 1u);    // le 1
  EXPECT_EQ(c[7], 1u);    // le 8
  EXPECT_EQ(c[8], 2u);    // le 12: 9 and 12
  EXPECT_EQ(c[9], 1u);    // le 16: 13
  EXPECT_EQ(c[17], 1u);   // le 1024
  EXPECT_EQ(c[18], 1u);   // +Inf
}

TEST(RecordRequest, RoutesMapToCountersAndInferenceTime) {
  ServableMetrics m;
  const int kserve_rest_infer = 1 * 6 + 1 * 3 + 0;
  const int kserve_grpc_infer = 1 * 6 + 0 * 3 + 0;
  const int tfs_grpc_metadata = 0 * 6 + 0 * 3 + 1;
  EXPECT_EQ(route_interface(kserve_rest_infer), 1);
  EXPECT_TRUE(route_is_inference(kserve_rest_infer));
  EXPECT_FALSE(route_is_inference(tfs_grpc_metadata));

  m.record_request(kserve_rest_infer, true, 50);
  m.record_request(kserve_rest_infer, true, 5);
  m.record_request(kserve_rest_infer, false, 999);
  m.record_request(kserve_grpc_infer, true, 20);
  m.record_request(tfs_grpc_metadata, true, 7);
  EXPECT_EQ(m.success[kserve_rest_infer].load(), 2u);
  EXPECT_EQ(m.fail[kserve_rest_infer].load(), 1u);
  EXPECT_EQ(m.success[kserve_grpc_infer].load(), 1u);
  EXPECT_EQ(m.success[tfs_grpc_metadata].load(), 1u);

  uint64_t rest_sum, grpc_sum;
  const auto rest = counts_of(m.request_us[1], &rest_sum);
  const auto grpc = counts_of(m.request_us[0], &grpc_sum);
  EXPECT_EQ(rest_sum, 55u) << "only successful inference requests are timed";
  EXPECT_EQ(rest[0], 1u);  // 5 us
  EXPECT_EQ(rest[3], 1u);  // 50 us, le 58
  EXPECT_EQ(grpc_sum, 20u) << "metadata time is not request time";
  EXPECT_EQ(grpc[2], 1u);  // 20 us, le 32
}

TEST(RecordRequest, OutOfRangeRoutesAreIgnored) {
  ServableMetrics m;
  m.record_request(kNoRoute, true, 1);
  m.record_request(2 * kRouteCount, false, 1);  // kRouteCount.. are node routes (below)
  m.record_request(-7, true, 1);
  for (int r = 0; r < kRouteCount; ++r) {
    EXPECT_EQ(m.success[r].load(), 0u);
    EXPECT_EQ(m.fail[r].load(), 0u);
  }
  uint64_t sum;
  counts_of(m.request_us[0], &sum);
  EXPECT_EQ(sum, 0u);
}

TEST(RecordRequest, PipelineNodeJobsCountUnderTheirRequestsRouteButAreNotTimed) {
  ServableMetrics m;
  const int kserve_grpc_infer = 1 * 6 + 0 * 3 + 0;
  const int node = node_route(kserve_grpc_infer);
  EXPECT_NE(node, kserve_grpc_infer);
  EXPECT_EQ(node_route(kNoRoute), kNoRoute) << "metrics off stay off";
  EXPECT_EQ(node_route(node), node) << "a node route is not shifted again";
  m.record_request(node, true, 40);
  m.record_request(node, false, 40);
  m.record_request(kserve_grpc_infer, true, 20);
  EXPECT_EQ(m.success[kserve_grpc_infer].load(), 2u) << "OVMS counts a model node's runs as the model's requests";
  EXPECT_EQ(m.fail[kserve_grpc_infer].load(), 1u);
  uint64_t sum;
  counts_of(m.request_us[0], &sum);
  EXPECT_EQ(sum, 20u) << "the request time is the pipeline's, not its nodes'";
  m.job_accepted(node);
  EXPECT_EQ(m.current_requests.load(), 1);
  m.job_done(node, now_ns(), true, true, 3, 30, 1);
  EXPECT_EQ(m.current_requests.load(), 0);
  uint64_t inferred;
  counts_of(m.inference_us, &inferred);
  EXPECT_EQ(inferred, 30u) << "inference time counts";
  EXPECT_EQ(m.success[kserve_grpc_infer].load(), 3u);
}

TEST(Histogram, ConcurrentObservationsAreAllCounted) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  ServableMetrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kPerThread; ++i) {
        m.inference_us.observe(static_cast<uint64_t>(t));
        m.record_request(t, (i & 1) == 0, 1);
      }
    });
  uint64_t sum;
  for (auto& th : threads) th.join();
  const auto c = counts_of(m.inference_us, &sum);
  EXPECT_EQ(c[0], static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(sum, static_cast<uint64_t>(kPerThread * (0 + 1 + 2 + 3)));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(m.success[t].load(), static_cast<uint64_t>(kPerThread / 2));
    EXPECT_EQ(m.fail[t].load(), static_cast<uint64_t>(kPerThread / 2));
  }
}

}  // namespace
}  // namespace ovfast

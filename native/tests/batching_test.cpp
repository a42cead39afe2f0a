// Dynamic batching policy and row movement (ovfast/batching.hpp): plan_batch
// is pure (queue + options + an instant in), so every case states the exact
// instant it decides on; no clock and no sleeps.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec_helpers.hpp"
#include "ovfast/batching.hpp"

namespace ovfast {
namespace {

constexpr uint64_t kT0 = 5'000'000'000;  // the head's enqueue time, ns
constexpr uint64_t kUs = 1000;
constexpr uint64_t kBig = 1'000'000'000;  // a queue delay no test reaches, us

std::unique_ptr<InferJob> job_with(const std::vector<Shape>& shapes) {
  auto job = std::make_unique<InferJob>();
  for (size_t i = 0; i < shapes.size(); ++i) {
    InputTensor in;
    in.name = "in" + std::to_string(i);
    in.dtype = DataType::FP32;
    in.shape = shapes[i];
    job->inputs.push_back(std::move(in));
  }
  return job;
}

// Appends a request whose inputs have `shapes`, enqueued at `at`.
void enqueue(std::deque<QueuedJob>& q, const std::vector<Shape>& shapes, uint64_t at = kT0) {
  QueuedJob item;
  item.job = job_with(shapes);
  item.rows = job_rows(*item.job);
  item.enqueue_ns = at;
  q.push_back(std::move(item));
}

// `n` requests of `rows` rows of width 4.
std::deque<QueuedJob> rows_queue(const std::vector<int64_t>& rows) {
  std::deque<QueuedJob> q;
  for (int64_t r : rows) enqueue(q, {{r, 4}});
  return q;
}

BatchingOptions options(int max_batch_size, uint64_t delay_us = kBig, std::vector<int> preferred = {}) {
  BatchingOptions o;
  o.max_batch_size = max_batch_size;
  o.max_queue_delay_us = delay_us;
  o.preferred_batch_sizes = std::move(preferred);
  return o;
}

using Take = std::vector<size_t>;

TEST(JobRows, SharedFirstDimensionOrMinusOne) {
  EXPECT_EQ(job_rows(*job_with({{3, 4}, {3}})), 3);
  EXPECT_EQ(job_rows(*job_with({{0, 4}})), 0);
  EXPECT_EQ(job_rows(*job_with({{3, 4}, {2, 4}})), -1) << "inputs disagree on dim 0";
  EXPECT_EQ(job_rows(*job_with({{3, 4}, {}})), -1) << "a scalar input has no batch dimension";
  EXPECT_EQ(job_rows(*job_with({})), -1) << "no inputs";
}

TEST(PlanBatch, UnbatchableHeadRunsAloneAtOnce) {
  const BatchingOptions opts = options(4);
  std::deque<QueuedJob> q;
  enqueue(q, {{2, 4}, {3, 4}});  // rows -1
  enqueue(q, {{1, 4}, {1, 4}});
  BatchPlan p = plan_batch(q, opts, kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, Take{0});

  for (int64_t rows : {0, 4, 9}) {  // no rows; max_batch_size rows or more
    std::deque<QueuedJob> r = rows_queue({rows, 1});
    p = plan_batch(r, opts, kT0, false);
    EXPECT_TRUE(p.dispatch) << rows;
    EXPECT_EQ(p.take, Take{0}) << rows;
  }
}

TEST(PlanBatch, FullBatchGoesAtOnce) {
  std::deque<QueuedJob> q = rows_queue({1, 1, 1, 1, 1});
  BatchPlan p = plan_batch(q, options(4), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1, 2, 3}));
}

TEST(PlanBatch, GrowsInArrivalOrderSkippingWhatDoesNotFit) {
  std::deque<QueuedJob> q = rows_queue({2, 3, 1, 1, 1});
  BatchPlan p = plan_batch(q, options(4), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 2, 3})) << "3 rows would overflow 4; the next two fill the batch";
}

TEST(PlanBatch, MismatchedNonBatchDimsAreLeftForLater) {
  std::deque<QueuedJob> q;
  enqueue(q, {{1, 4}});
  enqueue(q, {{1, 5}});     // other width
  enqueue(q, {{1, 4, 1}});  // other rank
  enqueue(q, {{1, 4}, {1, 4}});  // other input count
  enqueue(q, {{1, 4}});
  BatchPlan p = plan_batch(q, options(8, /*delay_us=*/0), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 4}));
}

TEST(PlanBatch, WaitsUntilTheOldestRequestsDeadline) {
  std::deque<QueuedJob> q;
  enqueue(q, {{1, 4}}, kT0);
  enqueue(q, {{2, 4}}, kT0 + 500 * kUs);
  const BatchingOptions opts = options(8, /*delay_us=*/1000);
  BatchPlan p = plan_batch(q, opts, kT0 + 999 * kUs, false);
  EXPECT_FALSE(p.dispatch);
  EXPECT_EQ(p.deadline_ns, kT0 + 1000 * kUs) << "the deadline is the head's, not the newest request's";
  p = plan_batch(q, opts, kT0 + 1000 * kUs, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
}

TEST(PlanBatch, ZeroDelayAndFlushDoNotWait) {
  std::deque<QueuedJob> q = rows_queue({1, 2});
  BatchPlan p = plan_batch(q, options(8, /*delay_us=*/0), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
  p = plan_batch(q, options(8), kT0, /*flush=*/true);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
  p = plan_batch(q, options(8), kT0, false);
  EXPECT_FALSE(p.dispatch);
}

TEST(PlanBatch, PreferredSizeGoesAtOnce) {
  std::deque<QueuedJob> q = rows_queue({1, 2});
  BatchPlan p = plan_batch(q, options(8, kBig, {3, 6}), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
  q = rows_queue({1, 1});
  p = plan_batch(q, options(8, kBig, {3, 6}), kT0, false);
  EXPECT_FALSE(p.dispatch);
}

TEST(PlanBatch, WithoutAPreferredPrefixItWaitsThenEverythingGoes) {
  const BatchingOptions opts = options(8, /*delay_us=*/100, {2, 4});
  const uint64_t due = kT0 + 100 * kUs;
  std::deque<QueuedJob> q = rows_queue({3});
  EXPECT_FALSE(plan_batch(q, opts, due - 1, false).dispatch);
  BatchPlan p = plan_batch(q, opts, due, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, Take{0});

  q = rows_queue({1, 2, 2});  // prefixes of 1, 3 and 5 rows: none preferred
  EXPECT_FALSE(plan_batch(q, opts, due - 1, false).dispatch);
  p = plan_batch(q, opts, due, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1, 2}));
}

TEST(PlanBatch, FlushAlsoCutsAtAPreferredSize) {
  std::deque<QueuedJob> q = rows_queue({1, 1, 1});
  BatchPlan p = plan_batch(q, options(8, kBig, {2}), kT0, /*flush=*/true);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
}

TEST(PlanBatch, AnUnbatchableRequestRunsAheadOfAWaitingBatch) {
  std::deque<QueuedJob> q;
  enqueue(q, {{1, 4}});
  enqueue(q, {{8, 4}});          // a whole batch by itself
  enqueue(q, {{1, 4}, {2, 4}});  // cannot share a batch
  BatchPlan p = plan_batch(q, options(8), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, Take{1}) << "the first request that gains nothing by waiting";
}

// batching.hpp says a batch goes at once when it reaches a preferred size, and Triton's
// batcher sends the largest preferred size as soon as the queue holds it. plan_batch
// used to check only the size of everything it collected: three 1-row requests queued
// while no infer request was free, with preferred {2} and max 8, waited for the full
// queue delay although a batch of 2 could go.
TEST(PlanBatch, QueueBeyondTheLargestPreferredSizeSendsAPreferredBatchAtOnce) {
  std::deque<QueuedJob> q = rows_queue({1, 1, 1});
  BatchPlan p = plan_batch(q, options(8, kBig, {2}), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
}

TEST(PlanBatch, TheLargestPreferredPrefixGoesAtOnce) {
  const BatchingOptions opts = options(8, kBig, {2, 4});
  std::deque<QueuedJob> q = rows_queue({1, 1, 1, 1, 1});
  BatchPlan p = plan_batch(q, opts, kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1, 2, 3})) << "4 rows, not 2 and not all 5";

  q = rows_queue({1, 1, 1});  // beyond 2 though short of 4: the 2 go, the third waits
  p = plan_batch(q, opts, kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));

  q = rows_queue({1, 2, 1, 1});  // 1, 3, 4 (preferred), 5
  p = plan_batch(q, opts, kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1, 2}));
}

TEST(PlanBatch, AFullBatchIsCutAtAPreferredSizeToo) {
  std::deque<QueuedJob> q = rows_queue({1, 1, 1, 1});
  BatchPlan p = plan_batch(q, options(4, kBig, {2}), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
  q = rows_queue({3, 1});  // full, and no prefix is preferred: all of it
  p = plan_batch(q, options(4, kBig, {2}), kT0, false);
  EXPECT_TRUE(p.dispatch);
  EXPECT_EQ(p.take, (Take{0, 1}));
}

// --- gathering and slicing rows ---------------------------------------------------

TEST(GatherInput, CopiesEachJobsRowsInOrder) {
  std::deque<QueuedJob> q = rows_queue({1, 2});
  std::vector<std::vector<float>> data = {{1, 2, 3, 4}, {5, 6, 7, 8, 9, 10, 11, 12}};
  for (size_t i = 0; i < 2; ++i) {
    InputTensor& in = q[i].job->inputs[0];
    in.data = reinterpret_cast<const uint8_t*>(data[i].data());
    in.size = data[i].size() * sizeof(float);
  }
  std::vector<QueuedJob*> jobs = {&q[0], &q[1]};
  ov::Tensor dst(ov::element::f32, ov::Shape{3, 4});
  gather_input(jobs, 0, dst);
  const float* out = dst.data<float>();
  EXPECT_EQ(std::vector<float>(out, out + 12), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

TEST(GatherInput, WritesEachJobsStringsInOrder) {
  std::deque<QueuedJob> q;
  enqueue(q, {{1}});
  enqueue(q, {{2}});
  // the requests' BYTES elements, (uint32 length, bytes)* as KServe raw contents carry them
  const std::string r0 = testkit::framed({"a"}), r1 = testkit::framed({"bb", std::string(100, 'c')});
  ASSERT_TRUE(BytesElements::prefixed(reinterpret_cast<const uint8_t*>(r0.data()), r0.size(), "s",
                                      &q[0].job->inputs[0].bytes).is_ok());
  ASSERT_TRUE(BytesElements::prefixed(reinterpret_cast<const uint8_t*>(r1.data()), r1.size(), "s",
                                      &q[1].job->inputs[0].bytes).is_ok());
  std::vector<QueuedJob*> jobs = {&q[0], &q[1]};
  ov::Tensor dst(ov::element::string, ov::Shape{3});
  gather_input(jobs, 0, dst);
  const std::string* out = dst.data<std::string>();
  EXPECT_EQ(std::vector<std::string>(out, out + 3), (std::vector<std::string>{"a", "bb", std::string(100, 'c')}));
}

TEST(SliceRows, NumericSliceIsAViewOfTheBatch) {
  ov::Tensor batch(ov::element::i32, ov::Shape{4, 3});
  int32_t* b = batch.data<int32_t>();
  for (int i = 0; i < 12; ++i) b[i] = i;
  ov::Tensor s = slice_rows(batch, 1, 2);
  EXPECT_EQ(s.get_shape(), (ov::Shape{2, 3}));
  EXPECT_EQ(s.get_element_type(), ov::element::i32);
  EXPECT_EQ(s.data<int32_t>(), b + 3) << "no copy";
  EXPECT_EQ(std::vector<int32_t>(s.data<int32_t>(), s.data<int32_t>() + 6), (std::vector<int32_t>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(slice_rows(batch, 4, 0).get_size(), 0u);
}

TEST(SliceRows, RefusesAScalarAndRowsOutsideTheBatch) {
  ov::Tensor scalar(ov::element::f32, ov::Shape{});
  EXPECT_THROW(slice_rows(scalar, 0, 1), std::invalid_argument);
  EXPECT_THROW(slice_rows(scalar, 0, 0), std::invalid_argument);
  ov::Tensor batch(ov::element::f32, ov::Shape{4, 3});
  EXPECT_THROW(slice_rows(batch, 3, 2), std::invalid_argument);
  EXPECT_THROW(slice_rows(batch, -1, 1), std::invalid_argument);
  EXPECT_THROW(slice_rows(batch, 0, -1), std::invalid_argument);
  ov::Tensor strings(ov::element::string, ov::Shape{2});
  EXPECT_THROW(slice_rows(strings, 1, 2), std::invalid_argument);
  EXPECT_EQ(slice_rows(strings, 1, 1).get_shape(), ov::Shape{1});
}

TEST(SliceRows, StringSliceIsACopy) {
  ov::Tensor batch(ov::element::string, ov::Shape{3, 2});
  std::string* b = batch.data<std::string>();
  for (int i = 0; i < 6; ++i) b[i] = "s" + std::to_string(i);
  ov::Tensor s = slice_rows(batch, 2, 1);
  EXPECT_EQ(s.get_shape(), (ov::Shape{1, 2}));
  b[4] = "changed";
  EXPECT_EQ(s.data<std::string>()[0], "s4");
  EXPECT_EQ(s.data<std::string>()[1], "s5");
}

}  // namespace
}  // namespace ovfast

// DynamicBatcher behind a Servable, on a ManualClock and real CPU inferences:
// a batch waits exactly until its oldest job's deadline, goes at once when it
// is full or of a preferred size, drain() and flush() stop the waiting, jobs
// whose non-batch dimensions differ run apart, and every job gets exactly its
// own rows. advance_ns() returns once the batcher has acted on the new time,
// so each check is at an exact instant, with no sleeps.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ovfast/clock.hpp"
#include "ovfast/servable.hpp"
#include "sched_helpers.hpp"

namespace ovfast {
namespace {

using testkit::expect_affine;
using testkit::f32_job;
using testkit::ramp;
using testkit::RecordingSink;

constexpr uint64_t kDelayUs = 1'000'000;  // the queue delay: 1 s of manual time
constexpr uint64_t kDelayNs = kDelayUs * 1000;
constexpr uint64_t kRowBytes = 4 * sizeof(float);  // one row of a [n,4] FP32 input

// Rows per dispatched inference -> how many inferences had them (sizes up to 8 are exact buckets).
std::map<uint64_t, uint64_t> batches(const ServableMetrics& m) {
  BatchSizeHistogram::Counts counts;
  uint64_t sum;
  m.batch_size.read(&counts, &sum);
  std::map<uint64_t, uint64_t> out;
  for (size_t i = 0; i < kBatchSizeBounds.size(); ++i)
    if (counts[i]) out[kBatchSizeBounds[i]] = counts[i];
  return out;
}

uint64_t queue_delay_sum_us(const ServableMetrics& m) {
  Histogram::Counts counts;
  uint64_t sum;
  m.batch_queue_delay_us.read(&counts, &sum);
  return sum;
}

class BatcherSchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    core_ = std::make_unique<ov::Core>();
    dir_ = std::make_unique<testkit::TempDir>();
    // Both dimensions dynamic, so jobs of other widths are valid and cannot share a batch.
    path_ = dir_->save(testkit::affine_model(ov::PartialShape{-1, -1}), "affine");
  }
  static void TearDownTestSuite() {
    core_.reset();
    dir_.reset();
  }

  // A batching servable on clock_: max_batch_size 4, the long delay, one infer request.
  void make(std::vector<int> preferred = {}, uint64_t delay_us = kDelayUs, int nireq = 1) {
    ModelOptions o = testkit::cpu_options(path_, nireq);
    o.batching.max_batch_size = 4;
    o.batching.max_queue_delay_us = delay_us;
    o.batching.preferred_batch_sizes = std::move(preferred);
    Status st = Servable::create(*core_, o, clock_, &s_);
    ASSERT_TRUE(st.is_ok()) << st.message();
  }
  // Submits job `id` of `rows` rows of width `width` (values start at `first`).
  void submit(const std::string& id, int64_t rows, float first, int64_t width = 4) {
    const std::vector<float> x = ramp(static_cast<size_t>(rows * width), first);
    inputs_[id] = {{rows, width}, x};
    Status st = s_->submit(f32_job(id, {rows, width}, x, sink_));
    ASSERT_TRUE(st.is_ok()) << id << ": " << st.message();
  }
  // Every submitted job was delivered once with y = 2x + 1 and z = 3x of its own rows.
  void expect_all_answered() {
    EXPECT_EQ(sink_->total(), static_cast<int>(inputs_.size()));
    for (const auto& [id, in] : inputs_) expect_affine(*sink_, id, in.first, in.second);
  }

  static std::unique_ptr<ov::Core> core_;
  static std::unique_ptr<testkit::TempDir> dir_;
  static std::string path_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<RecordingSink> sink_ = std::make_shared<RecordingSink>();
  std::map<std::string, std::pair<Shape, std::vector<float>>> inputs_;
  std::unique_ptr<Servable> s_;  // last: destroyed (drained) before the sink and clock
};
std::unique_ptr<ov::Core> BatcherSchedulerTest::core_;
std::unique_ptr<testkit::TempDir> BatcherSchedulerTest::dir_;
std::string BatcherSchedulerTest::path_;

TEST_F(BatcherSchedulerTest, JobsWaitForTheDeadlineThenRunAsOneBatch) {
  make();
  EXPECT_EQ(s_->max_batch_size(), 4);
  submit("a", 1, 0);
  submit("b", 2, 10);
  EXPECT_EQ(s_->queued(), 2);
  clock_->advance_ns(kDelayNs - 1);
  EXPECT_EQ(s_->queued(), 2) << "1 ns before the deadline nothing goes";
  EXPECT_EQ(sink_->total(), 0);
  clock_->advance_ns(1);
  EXPECT_EQ(s_->queued(), 0) << "on the deadline the batch has started";
  ASSERT_TRUE(sink_->wait_for(2));
  s_->drain();
  expect_all_answered();
  const ServableMetrics& m = s_->metrics();
  EXPECT_EQ(batches(m), (std::map<uint64_t, uint64_t>{{3, 1}}));
  EXPECT_EQ(queue_delay_sum_us(m), 2 * kDelayUs) << "each job waited exactly the delay";
  EXPECT_EQ(m.batch_copied_bytes.load(), 3 * kRowBytes) << "each row copied once";
  EXPECT_EQ(m.stats.execution_count.load(), 1u);
  EXPECT_EQ(m.stats.inference_count.load(), 3u) << "rows, with a batcher";
  EXPECT_EQ(m.stats.success_count.load(), 2u);
}

TEST_F(BatcherSchedulerTest, FullBatchGoesAtOnce) {
  make();
  for (int i = 0; i < 4; ++i) submit(std::to_string(i), 1, static_cast<float>(10 * i));
  EXPECT_EQ(s_->queued(), 0) << "the fourth row filled the batch: it started on the submitting thread";
  ASSERT_TRUE(sink_->wait_for(4));
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{4, 1}}));
  EXPECT_EQ(queue_delay_sum_us(s_->metrics()), 0u) << "no manual time passed";

  submit("next", 1, 50);
  EXPECT_EQ(s_->queued(), 1) << "a new batch forms and waits";
  s_->drain();
  expect_all_answered();
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{1, 1}, {4, 1}}));
  EXPECT_EQ(s_->metrics().batch_copied_bytes.load(), 4 * kRowBytes) << "a batch of one copies nothing";
}

TEST_F(BatcherSchedulerTest, JobOfMaxRowsOrMoreRunsAloneAtOnce) {
  make();
  submit("small", 1, 0);
  submit("big", 6, 100);  // more rows than a batch holds
  ASSERT_TRUE(sink_->wait_for(1));
  expect_affine(*sink_, "big", {6, 4}, inputs_["big"].second);
  EXPECT_EQ(s_->queued(), 1) << "the small job still waits for its batch";
  s_->drain();
  expect_all_answered();
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{1, 1}, {6, 1}}));
  EXPECT_EQ(s_->metrics().batch_copied_bytes.load(), 0u);
}

TEST_F(BatcherSchedulerTest, PreferredSizeGoesAtOnce) {
  make({2});
  submit("a", 1, 0);
  EXPECT_EQ(s_->queued(), 1);
  submit("b", 1, 10);
  EXPECT_EQ(s_->queued(), 0) << "2 rows is a preferred size";
  ASSERT_TRUE(sink_->wait_for(2));
  submit("c", 1, 20);
  EXPECT_EQ(s_->queued(), 1) << "1 row is not";
  clock_->advance_ns(kDelayNs);
  ASSERT_TRUE(sink_->wait_for(3));
  s_->drain();
  expect_all_answered();
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{1, 1}, {2, 1}}));
}

TEST_F(BatcherSchedulerTest, QueueBeyondTheLargestPreferredSizeSendsAPreferredBatchAtOnce) {
  make({2});
  // The first batch's delivery is held, so its OpenVINO thread keeps the only
  // infer request while three more rows queue.
  sink_->hold();
  submit("p0", 1, 0);
  submit("p1", 1, 10);
  ASSERT_TRUE(sink_->wait_held());
  submit("a", 1, 20);
  submit("b", 1, 30);
  submit("c", 1, 40);
  EXPECT_EQ(s_->queued(), 3) << "no infer request is free";
  sink_->release();
  // The freed request takes a preferred batch of 2 at once; the third row waits.
  ASSERT_TRUE(sink_->wait_for(4));
  EXPECT_EQ(s_->queued(), 1);
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{2, 2}}));
  clock_->advance_ns(kDelayNs);
  ASSERT_TRUE(sink_->wait_for(5));
  s_->drain();
  expect_all_answered();
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{1, 1}, {2, 2}}));
}

TEST_F(BatcherSchedulerTest, DrainFlushesAWaitingBatch) {
  make();
  submit("a", 1, 0);
  submit("b", 1, 10);
  EXPECT_EQ(s_->queued(), 2);
  s_->drain();  // no manual time passes
  EXPECT_EQ(s_->queued(), 0);
  EXPECT_EQ(s_->active(), 0);
  EXPECT_EQ(sink_->total(), 2) << "drain() returns with the batch delivered";
  expect_all_answered();
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{2, 1}}));

  submit("later", 1, 20);
  EXPECT_EQ(s_->queued(), 1) << "after drain() batches wait again";
  s_->drain();
}

TEST_F(BatcherSchedulerTest, FlushSendsWhatWaitsAndNothingWaitsAfterIt) {
  make();
  submit("a", 1, 0);
  submit("b", 1, 10);
  s_->flush();  // does not block
  ASSERT_TRUE(sink_->wait_for(2));
  submit("c", 1, 20);
  ASSERT_TRUE(sink_->wait_for(3)) << "after flush() a job goes without its delay";
  s_->drain();
  expect_all_answered();
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{1, 1}, {2, 1}}));
  EXPECT_EQ(queue_delay_sum_us(s_->metrics()), 0u);
}

TEST_F(BatcherSchedulerTest, JobWithOtherNonBatchDimsRunsAlone) {
  make();
  submit("a", 1, 0);
  submit("wide", 1, 10, /*width=*/5);
  submit("c", 1, 20);
  EXPECT_EQ(s_->queued(), 3);
  clock_->advance_ns(kDelayNs);
  // a and c go together; "wide" then runs alone on the freed request (its deadline has passed too).
  ASSERT_TRUE(sink_->wait_for(3));
  s_->drain();
  expect_all_answered();
  EXPECT_EQ(batches(s_->metrics()), (std::map<uint64_t, uint64_t>{{1, 1}, {2, 1}}));
  EXPECT_EQ(s_->metrics().batch_copied_bytes.load(), 2 * kRowBytes) << "only the shared batch is gathered";
}

TEST_F(BatcherSchedulerTest, DestroyingTheServableSendsAWaitingBatch) {
  make();
  submit("a", 1, 0);
  submit("b", 2, 10);
  s_.reset();
  expect_all_answered();
}

TEST_F(BatcherSchedulerTest, ManyThreadsEachGetTheirOwnRows) {
  make({}, /*delay_us=*/0, /*nireq=*/2);  // no delay: a batch is whatever queued meanwhile
  constexpr int kThreads = 4, kEach = 30;
  auto id = [](int t, int i) { return std::to_string(t) + "/" + std::to_string(i); };
  auto rows = [](int i) { return int64_t{1} + i % 3; };
  std::vector<std::vector<float>> xs(kThreads * kEach);
  uint64_t total_rows = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i) {
      xs[static_cast<size_t>(t * kEach + i)] = ramp(static_cast<size_t>(rows(i)) * 4, static_cast<float>(t * 1000 + i * 10));
      total_rows += static_cast<uint64_t>(rows(i));
    }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        EXPECT_TRUE(s_->submit(f32_job(id(t, i), {rows(i), 4}, xs[static_cast<size_t>(t * kEach + i)], sink_)).is_ok());
    });
  for (auto& th : threads) th.join();
  ASSERT_TRUE(sink_->wait_for(kThreads * kEach));
  s_->drain();
  EXPECT_EQ(sink_->total(), kThreads * kEach);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i) expect_affine(*sink_, id(t, i), {rows(i), 4}, xs[static_cast<size_t>(t * kEach + i)]);
  // Whatever the batches were: every row ran once, and each batch was one execution.
  const ServableMetrics& m = s_->metrics();
  BatchSizeHistogram::Counts counts;
  uint64_t rows_sum;
  m.batch_size.read(&counts, &rows_sum);
  uint64_t executions = 0;
  for (uint64_t c : counts) executions += c;
  EXPECT_EQ(rows_sum, total_rows);
  EXPECT_EQ(m.stats.inference_count.load(), total_rows);
  EXPECT_EQ(m.stats.execution_count.load(), executions);
  EXPECT_EQ(m.stats.success_count.load(), uint64_t{kThreads * kEach});
}

}  // namespace
}  // namespace ovfast

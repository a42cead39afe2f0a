// Servable with the DirectScheduler (one job per infer request) and the
// EchoScheduler (no inference), on real CPU inferences of models built in the
// test: every accepted job reaches its sink exactly once with its own outputs,
// in the order asked for; jobs beyond the infer requests queue; drain() leaves
// nothing in flight; a job refused by submit() reaches no sink; and the Triton
// statistics count all of it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ovfast/sched/direct.hpp"
#include "ovfast/servable.hpp"
#include "sched_helpers.hpp"

namespace ovfast {
namespace {

using testkit::expect_affine;
using testkit::f32_input;
using testkit::f32_job;
using testkit::ramp;
using testkit::RecordingSink;
using testkit::ThreadSink;

constexpr int kRoute = 6;  // KServe, gRPC, inference (metrics.hpp)

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    core_ = std::make_unique<ov::Core>();
    dir_ = std::make_unique<testkit::TempDir>();
    affine_path_ = dir_->save(testkit::affine_model(ov::PartialShape{-1, 4}), "affine");
    add_one_path_ = dir_->save(testkit::add_one_model(), "add_one");
  }
  static void TearDownTestSuite() {
    core_.reset();
    dir_.reset();
  }

  // A servable of the [-1,4] affine model with `nireq` infer requests (echo: none).
  static std::unique_ptr<Servable> affine(int nireq, bool echo = false, int max_queue_size = 0,
                                          uint64_t inline_max_us = 200) {
    ModelOptions o = testkit::cpu_options(affine_path_, nireq);
    o.inline_max_us = inline_max_us;
    o.echo = echo;
    o.max_queue_size = max_queue_size;
    std::unique_ptr<Servable> s;
    Status st = Servable::create(*core_, o, nullptr, &s);
    EXPECT_TRUE(st.is_ok()) << st.message();
    return s;
  }

  static std::unique_ptr<ov::Core> core_;
  static std::unique_ptr<testkit::TempDir> dir_;
  static std::string affine_path_, add_one_path_;
};
std::unique_ptr<ov::Core> SchedulerTest::core_;
std::unique_ptr<testkit::TempDir> SchedulerTest::dir_;
std::string SchedulerTest::affine_path_, SchedulerTest::add_one_path_;

TEST_F(SchedulerTest, DirectJobGetsTwoXPlusOne) {
  std::unique_ptr<Servable> s = affine(1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->nireq(), 1);
  auto sink = std::make_shared<RecordingSink>();
  const std::vector<float> x = ramp(8, -2.0f);
  ASSERT_TRUE(s->submit(f32_job("a", {2, 4}, x, sink)).is_ok());
  ASSERT_TRUE(sink->wait_for(1));
  expect_affine(*sink, "a", {2, 4}, x);
  s->drain();
  const InferStatistics& st = s->metrics().stats;
  EXPECT_EQ(st.success_count.load(), 1u);
  EXPECT_EQ(st.fail_count.load(), 0u);
  EXPECT_EQ(st.execution_count.load(), 1u);
  EXPECT_EQ(st.inference_count.load(), 1u) << "without a batcher a request counts once, whatever its rows";
}

TEST_F(SchedulerTest, StaticModelAddsOne) {
  std::unique_ptr<Servable> s;
  ASSERT_TRUE(Servable::create(*core_, testkit::cpu_options(add_one_path_, 1), nullptr, &s).is_ok());
  auto sink = std::make_shared<RecordingSink>();
  const std::vector<float> x = ramp(10, 3.0f);
  ASSERT_TRUE(s->submit(f32_job("a", {1, 10}, x, sink)).is_ok());
  s->drain();
  testkit::Outcome o = sink->outcome("a");
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  ASSERT_EQ(o.outputs.size(), 1u);
  EXPECT_EQ(o.outputs[0].shape, (Shape{1, 10}));
  EXPECT_EQ(o.outputs[0].values, testkit::affine(x, 1, 1));
}

TEST_F(SchedulerTest, JobsFromSeveralThreadsCompleteExactlyOnce) {
  std::unique_ptr<Servable> s = affine(2);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  constexpr int kThreads = 4, kEach = 40;
  auto id = [](int t, int i) { return std::to_string(t) + "/" + std::to_string(i); };
  auto rows = [](int i) { return int64_t{1} + i % 3; };
  auto values = [&](int t, int i) { return ramp(static_cast<size_t>(rows(i)) * 4, static_cast<float>(t * 100 + i)); };
  std::vector<std::thread> threads;
  std::vector<int> refused(kThreads, 0);
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto job = f32_job(id(t, i), {rows(i), 4}, values(t, i), sink);
        job->metrics_route = kRoute;
        if (!s->submit(std::move(job)).is_ok()) ++refused[static_cast<size_t>(t)];
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(refused, std::vector<int>(kThreads, 0));
  ASSERT_TRUE(sink->wait_for(kThreads * kEach));
  s->drain();
  EXPECT_EQ(sink->total(), kThreads * kEach) << "no job is delivered twice";
  EXPECT_EQ(sink->outcomes().size(), static_cast<size_t>(kThreads * kEach));
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i) expect_affine(*sink, id(t, i), {rows(i), 4}, values(t, i));
  ServableMetrics& m = s->metrics();
  EXPECT_EQ(m.stats.success_count.load(), uint64_t{kThreads * kEach});
  EXPECT_EQ(m.stats.execution_count.load(), uint64_t{kThreads * kEach});
  EXPECT_EQ(m.stats.inference_count.load(), uint64_t{kThreads * kEach});
  EXPECT_EQ(m.success[kRoute].load(), uint64_t{kThreads * kEach});
  EXPECT_EQ(m.current_requests.load(), 0);
}

TEST_F(SchedulerTest, RequestedOutputsComeInTheOrderAsked) {
  std::unique_ptr<Servable> s = affine(1);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  const std::vector<float> x = ramp(4, 1.0f);
  auto reversed = f32_job("z,y", {1, 4}, x, sink);
  reversed->requested_outputs = {"z", "y"};
  auto only_z = f32_job("z", {1, 4}, x, sink);
  only_z->requested_outputs = {"z"};
  ASSERT_TRUE(s->submit(std::move(reversed)).is_ok());
  ASSERT_TRUE(s->submit(std::move(only_z)).is_ok());
  s->drain();

  testkit::Outcome o = sink->outcome("z,y");
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  ASSERT_EQ(o.outputs.size(), 2u);
  EXPECT_EQ(o.outputs[0].name, "z");
  EXPECT_EQ(o.outputs[0].values, testkit::affine(x, 3, 0));
  EXPECT_EQ(o.outputs[1].name, "y");
  EXPECT_EQ(o.outputs[1].values, testkit::affine(x, 2, 1));
  o = sink->outcome("z");
  ASSERT_EQ(o.outputs.size(), 1u);
  EXPECT_EQ(o.outputs[0].name, "z");
  EXPECT_EQ(o.outputs[0].values, testkit::affine(x, 3, 0));
}

TEST_F(SchedulerTest, JobsBeyondTheInferRequestsQueueAndAllFinish) {
  std::unique_ptr<Servable> s = affine(1);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  // The first job's delivery is held: its OpenVINO callback thread keeps the
  // only infer request leased, so everything after it must queue.
  sink->hold();
  ASSERT_TRUE(s->submit(f32_job("0", {1, 4}, ramp(4, 0), sink)).is_ok());
  ASSERT_TRUE(sink->wait_held());
  constexpr int kJobs = 10;
  for (int i = 1; i < kJobs; ++i)
    ASSERT_TRUE(s->submit(f32_job(std::to_string(i), {1, 4}, ramp(4, static_cast<float>(i)), sink)).is_ok());
  EXPECT_EQ(s->queued(), kJobs - 1);
  EXPECT_EQ(s->active(), 1);
  EXPECT_EQ(sink->total(), 1);
  sink->release();
  ASSERT_TRUE(sink->wait_for(kJobs));
  s->drain();
  for (int i = 0; i < kJobs; ++i) expect_affine(*sink, std::to_string(i), {1, 4}, ramp(4, static_cast<float>(i)));
  EXPECT_EQ(s->metrics().stats.execution_count.load(), uint64_t{kJobs});
}

TEST_F(SchedulerTest, QueuedJobsPastTheirDeadlineOrCancelledAreDroppedNotRun) {
  std::unique_ptr<Servable> s = affine(1);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  sink->hold();  // the only infer request stays leased: what follows queues
  ASSERT_TRUE(s->submit(f32_job("first", {1, 4}, ramp(4, 0), sink)).is_ok());
  ASSERT_TRUE(sink->wait_held());
  std::atomic<bool> gone{false};
  auto late = f32_job("late", {1, 4}, ramp(4, 1), sink);
  late->deadline_ns = now_ns();  // already due: past by the time the request is free
  late->metrics_route = kRoute;
  auto cancelled = f32_job("cancelled", {1, 4}, ramp(4, 2), sink);
  cancelled->cancelled = &gone;
  auto patient = f32_job("patient", {1, 4}, ramp(4, 3), sink);
  patient->deadline_ns = now_ns() + 3600ull * 1000000000ull;
  ASSERT_TRUE(s->submit(std::move(late)).is_ok());
  ASSERT_TRUE(s->submit(std::move(cancelled)).is_ok());
  ASSERT_TRUE(s->submit(std::move(patient)).is_ok());
  ASSERT_TRUE(s->submit(f32_job("plain", {1, 4}, ramp(4, 4), sink)).is_ok());
  EXPECT_EQ(s->queued(), 4);
  gone = true;  // its client went away while it waited
  sink->release();
  s->drain();

  expect_affine(*sink, "first", {1, 4}, ramp(4, 0));
  expect_affine(*sink, "patient", {1, 4}, ramp(4, 3));
  expect_affine(*sink, "plain", {1, 4}, ramp(4, 4));
  for (const char* id : {"late", "cancelled"}) {
    EXPECT_EQ(sink->outcome(id).deliveries, 1) << id;
    EXPECT_EQ(sink->outcome(id).outputs.size(), 0u) << id;
  }
  EXPECT_EQ(sink->outcome("late").status.code(), StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(sink->outcome("cancelled").status.code(), StatusCode::CANCELLED);
  ServableMetrics& m = s->metrics();
  EXPECT_EQ(m.stats.execution_count.load(), 3u) << "dropped jobs never run";
  EXPECT_EQ(m.stats.success_count.load(), 3u);
  EXPECT_EQ(m.stats.fail_count.load(), 2u);
  EXPECT_EQ(m.fail[kRoute].load(), 1u) << "the late job was counted under its route";
  EXPECT_EQ(m.current_requests.load(), 0);
}

TEST_F(SchedulerTest, MaxQueueSizeRefusesJobsBeyondItAndCountsThem) {
  std::unique_ptr<Servable> s = affine(1, false, /*max_queue_size=*/2);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  sink->hold();
  ASSERT_TRUE(s->submit(f32_job("running", {1, 4}, ramp(4, 0), sink)).is_ok());
  ASSERT_TRUE(sink->wait_held());
  ASSERT_TRUE(s->submit(f32_job("q1", {1, 4}, ramp(4, 1), sink)).is_ok());
  ASSERT_TRUE(s->submit(f32_job("q2", {1, 4}, ramp(4, 2), sink)).is_ok());
  auto extra = f32_job("extra", {1, 4}, ramp(4, 3), sink);
  extra->metrics_route = kRoute;
  Status st = s->submit(std::move(extra));
  EXPECT_EQ(st.code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.message().find("Model queue is full: 2 requests are waiting (max_queue_size 2)"), std::string::npos)
      << st.message();
  sink->release();
  s->drain();
  for (int i = 1; i <= 2; ++i) expect_affine(*sink, "q" + std::to_string(i), {1, 4}, ramp(4, static_cast<float>(i)));
  EXPECT_EQ(sink->outcome("extra").deliveries, 0) << "a refused job reaches no sink";
  ServableMetrics& m = s->metrics();
  EXPECT_EQ(m.rejected_queue_full.load(), 1u);
  EXPECT_EQ(m.fail[kRoute].load(), 1u);
  ASSERT_TRUE(s->submit(f32_job("after", {1, 4}, ramp(4, 4), sink)).is_ok());  // room again
  s->drain();
  expect_affine(*sink, "after", {1, 4}, ramp(4, 4));
}

TEST_F(SchedulerTest, ShortRunsGoInlineOnTheSubmittingThreadOnceMeasured) {
  // "short" is a minute here: the decision, not the machine's (or a sanitizer's) speed, is under test
  std::unique_ptr<Servable> s = affine(1, false, 0, /*inline_max_us=*/60'000'000);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<ThreadSink>();
  constexpr int kJobs = 50;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(s->submit(f32_job(std::to_string(i), {1, 4}, ramp(4, static_cast<float>(i)), sink)).is_ok());
    s->drain();  // one at a time: the request is free for the next
  }
  std::lock_guard<std::mutex> lock(sink->mu);
  EXPECT_EQ(sink->ok, kJobs);
  ASSERT_EQ(sink->threads.size(), static_cast<size_t>(kJobs));
  EXPECT_NE(sink->threads["0"], std::this_thread::get_id()) << "the first run is measured: asynchronous";
  EXPECT_EQ(sink->threads[std::to_string(kJobs - 1)], std::this_thread::get_id())
      << "a model of microseconds runs on the thread that submits";
  EXPECT_EQ(s->metrics().stats.execution_count.load(), static_cast<uint64_t>(kJobs));
}

// The last of kJobs runs, one at a time, of the affine model whose asynchronous
// runs measure `hop_ns`: whether it ran on the submitting thread.
bool last_run_inline(ov::Core& core, const std::string& path, uint64_t hop_ns) {
  ModelOptions o = testkit::cpu_options(path, 1);
  o.inline_max_us = 200;
  std::unique_ptr<Servable> s;
  Status st = Servable::create(core, o, std::make_shared<testkit::ThreadStepClock>(hop_ns), &s);
  EXPECT_TRUE(st.is_ok()) << st.message();
  if (!s) return false;
  auto sink = std::make_shared<ThreadSink>();
  constexpr int kJobs = 40;
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_TRUE(s->submit(f32_job(std::to_string(i), {1, 4}, ramp(4, static_cast<float>(i)), sink)).is_ok());
    s->drain();
  }
  std::lock_guard<std::mutex> lock(sink->mu);
  EXPECT_EQ(sink->ok, kJobs);
  EXPECT_NE(sink->threads["0"], std::this_thread::get_id()) << "the first run is measured: asynchronous";
  return sink->threads[std::to_string(kJobs - 1)] == std::this_thread::get_id();
}

TEST_F(SchedulerTest, AnInlineProbeMeasuresRunsThatTheAsynchronousHopMakesLookLong) {
  // 1 ms per asynchronous run (5x the 200 µs limit): a probe runs inline, measures the run alone, and
  // the runs stay inline
  EXPECT_TRUE(last_run_inline(*core_, affine_path_, 1'000'000));
  // 100 ms per asynchronous run (beyond 50x the limit): a long model, never probed
  EXPECT_FALSE(last_run_inline(*core_, affine_path_, 100'000'000));
}

TEST_F(SchedulerTest, DrainReturnsWithNothingInFlight) {
  std::unique_ptr<Servable> s = affine(2);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  constexpr int kJobs = 30;
  for (int i = 0; i < kJobs; ++i)
    ASSERT_TRUE(s->submit(f32_job(std::to_string(i), {1, 4}, ramp(4, static_cast<float>(i)), sink)).is_ok());
  s->drain();
  EXPECT_EQ(s->queued(), 0);
  EXPECT_EQ(s->active(), 0);
  EXPECT_EQ(sink->total(), kJobs) << "every job was delivered before drain() returned";
  EXPECT_EQ(s->metrics().stats.success_count.load(), uint64_t{kJobs});
  s->drain();  // with nothing in flight it returns at once
}

TEST_F(SchedulerTest, RefusedJobsReachNoSinkAndCountAsFailures) {
  std::unique_ptr<Servable> s = affine(1);
  ASSERT_TRUE(s);
  auto sink = std::make_shared<RecordingSink>();
  struct Case {
    const char* what;
    std::unique_ptr<InferJob> job;
    const char* message;  // a part of the expected message
  };
  std::vector<Case> cases;
  {
    auto job = f32_job("dtype", {1, 4}, ramp(4, 0), sink);
    job->inputs[0].dtype = DataType::INT32;
    job->inputs[0].datatype_name = "INT32";
    cases.push_back({"wrong dtype", std::move(job), "Invalid input precision"});
  }
  cases.push_back({"wrong width", f32_job("shape", {1, 5}, ramp(5, 0), sink), "Invalid input shape"});
  cases.push_back({"wrong rank", f32_job("rank", {4}, ramp(4, 0), sink), "Invalid number of shape dimensions"});
  cases.push_back({"too few bytes", f32_job("bytes", {2, 4}, ramp(4, 0), sink), "Invalid content size"});
  {
    auto job = f32_job("name", {1, 4}, ramp(4, 0), sink);
    job->inputs[0].name = "nope";
    cases.push_back({"missing input", std::move(job), "Missing input with specific name"});
  }
  {
    auto job = f32_job("extra", {1, 4}, ramp(4, 0), sink);
    job->inputs.push_back(f32_input("x2", {1, 4}, ramp(4, 0)));
    cases.push_back({"extra input", std::move(job), "Invalid number of inputs"});
  }
  {
    auto job = f32_job("twice", {1, 4}, ramp(4, 0), sink);
    job->requested_outputs = {"y", "z", "y"};
    cases.push_back({"repeated output", std::move(job), "requested more than once"});
  }
  {
    auto job = f32_job("unknown", {1, 4}, ramp(4, 0), sink);
    job->requested_outputs = {"w"};
    cases.push_back({"unknown output", std::move(job), "no output named"});
  }
  for (Case& c : cases) {
    c.job->metrics_route = kRoute;
    Status st = s->submit(std::move(c.job));
    EXPECT_EQ(st.code(), StatusCode::INVALID_ARGUMENT) << c.what;
    EXPECT_NE(st.message().find(c.message), std::string::npos) << c.what << ": " << st.message();
  }
  s->drain();
  EXPECT_EQ(sink->total(), 0) << "a refused job reaches no sink";
  ServableMetrics& m = s->metrics();
  EXPECT_EQ(m.stats.fail_count.load(), cases.size());
  EXPECT_EQ(m.stats.success_count.load(), 0u);
  EXPECT_EQ(m.stats.execution_count.load(), 0u);
  EXPECT_EQ(m.fail[kRoute].load(), cases.size());
  EXPECT_EQ(m.current_requests.load(), 0) << "refused jobs were never accepted";

  // The servable still serves.
  ASSERT_TRUE(s->submit(f32_job("ok", {1, 4}, ramp(4, 0), sink)).is_ok());
  s->drain();
  expect_affine(*sink, "ok", {1, 4}, ramp(4, 0));
  EXPECT_EQ(m.stats.success_count.load(), 1u);
}

TEST_F(SchedulerTest, DirectSchedulerTakesTheJobItAccepts) {
  std::unique_ptr<ModelInstance> model;
  ASSERT_TRUE(ModelInstance::create(*core_, testkit::cpu_options(affine_path_, 1), &model).is_ok());
  ServableMetrics metrics;
  auto sink = std::make_shared<RecordingSink>();
  {
    DirectScheduler sched(*model, metrics, steady_clock());
    std::unique_ptr<InferJob> job = f32_job("a", {1, 4}, ramp(4, 0), sink);
    ASSERT_TRUE(model->validate(*job).is_ok());
    ASSERT_TRUE(sched.submit(job).is_ok());
    EXPECT_FALSE(job) << "on OK the scheduler owns the job";
    sched.drain();
  }
  expect_affine(*sink, "a", {1, 4}, ramp(4, 0));
}

TEST_F(SchedulerTest, EchoOutputsAreTheInputs) {
  std::unique_ptr<Servable> s = affine(0, /*echo=*/true);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->nireq(), 0);
  auto sink = std::make_shared<RecordingSink>();
  const std::vector<float> x = ramp(12, 7.0f);
  ASSERT_TRUE(s->submit(f32_job("a", {3, 4}, x, sink)).is_ok());
  EXPECT_EQ(sink->total(), 1) << "echo delivers on the submitting thread, before submit returns";
  testkit::Outcome o = sink->outcome("a");
  ASSERT_TRUE(o.status.is_ok()) << o.status.message();
  ASSERT_EQ(o.outputs.size(), 1u) << "input i echoes as output i";
  EXPECT_EQ(o.outputs[0].name, "y");
  EXPECT_EQ(o.outputs[0].dtype, DataType::FP32);
  EXPECT_EQ(o.outputs[0].shape, (Shape{3, 4}));
  EXPECT_EQ(o.outputs[0].values, x);

  // Validation still applies, and several threads each get their own echo.
  EXPECT_EQ(s->submit(f32_job("bad", {3, 5}, ramp(15, 0), sink)).code(), StatusCode::INVALID_ARGUMENT);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string id = std::to_string(t) + "/" + std::to_string(i);
        EXPECT_TRUE(s->submit(f32_job(id, {1, 4}, ramp(4, static_cast<float>(t * 20 + i)), sink)).is_ok());
      }
    });
  for (auto& th : threads) th.join();
  s->drain();
  EXPECT_EQ(sink->total(), 61);
  for (int t = 0; t < 3; ++t)
    for (int i = 0; i < 20; ++i) {
      o = sink->outcome(std::to_string(t) + "/" + std::to_string(i));
      EXPECT_EQ(o.deliveries, 1);
      ASSERT_EQ(o.outputs.size(), 1u);
      EXPECT_EQ(o.outputs[0].values, ramp(4, static_cast<float>(t * 20 + i)));
    }
  const InferStatistics& st = s->metrics().stats;
  EXPECT_EQ(st.success_count.load(), 61u);
  EXPECT_EQ(st.execution_count.load(), 61u);
  EXPECT_EQ(st.inference_count.load(), 61u);
  EXPECT_EQ(st.fail_count.load(), 1u);
}

TEST_F(SchedulerTest, DestroyingAServableWaitsForItsJobs) {
  auto sink = std::make_shared<RecordingSink>();
  constexpr int kJobs = 12;
  {
    std::unique_ptr<Servable> s = affine(2);
    ASSERT_TRUE(s);
    for (int i = 0; i < kJobs; ++i)
      ASSERT_TRUE(s->submit(f32_job(std::to_string(i), {1, 4}, ramp(4, static_cast<float>(i)), sink)).is_ok());
  }
  EXPECT_EQ(sink->total(), kJobs);
}

}  // namespace
}  // namespace ovfast

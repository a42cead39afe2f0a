// PoolScheduler's hooks for whoever submits from a completion or launches several jobs at once (a
// pipeline): NoInlineRuns keeps even a model measured short off the submitting thread, and
// after_completion runs a sink's work on the delivering thread once the infer request has been handed on.
// Also how the inline decision takes one preempted run.
// Real CPU inferences of the affine model (sched_helpers.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ovfast/sched/pool_scheduler.hpp"
#include "ovfast/servable.hpp"
#include "sched_helpers.hpp"

namespace ovfast {
namespace {

using testkit::f32_job;
using testkit::ramp;
using testkit::ThreadSink;

// The [-1,4] affine model saved in a directory of its own and served with one infer request.
struct OneRequestAffine {
  ov::Core core;
  testkit::TempDir dir;
  std::unique_ptr<Servable> servable;  // declared last: goes first
  explicit OneRequestAffine(uint64_t inline_max_us, std::shared_ptr<Clock> clock = nullptr) {
    ModelOptions options = testkit::cpu_options(dir.save(testkit::affine_model(ov::PartialShape{-1, 4}), "affine"), 1);
    options.inline_max_us = inline_max_us;
    Status st = Servable::create(core, options, std::move(clock), &servable);
    EXPECT_TRUE(st.is_ok()) << st.message();
  }
  // One job, alone: submitted, then drained.
  void run_one(const std::string& id, const std::shared_ptr<ThreadSink>& sink) {
    ASSERT_TRUE(servable->submit(f32_job(id, {1, 4}, ramp(4, 1.0f), sink)).is_ok());
    servable->drain();
  }
};

TEST(SchedulerHooks, NoInlineRunsKeepsEvenShortRunsOffTheSubmittingThread) {
  // a pipeline launching several jobs from one thread: none of them may hold up the others by running inline
  OneRequestAffine model(/*inline_max_us=*/60'000'000);
  ASSERT_TRUE(model.servable);
  auto sink = std::make_shared<ThreadSink>();
  auto one = [&](const std::string& id) { model.run_one(id, sink); };
  for (int i = 0; i < 3; ++i) one("warm" + std::to_string(i));  // measured: from the second on, inline
  {
    NoInlineRuns bar;
    {
      NoInlineRuns nested;
      one("nested");
    }
    one("barred");  // the inner guard's end keeps the outer one
  }
  one("after");
  std::lock_guard<std::mutex> lock(sink->mu);
  EXPECT_EQ(sink->ok, 6);
  EXPECT_EQ(sink->threads["warm2"], std::this_thread::get_id()) << "inline without the guard";
  EXPECT_NE(sink->threads["nested"], std::this_thread::get_id());
  EXPECT_NE(sink->threads["barred"], std::this_thread::get_id());
  EXPECT_EQ(sink->threads["after"], std::this_thread::get_id()) << "the guard ends with its scope";
}

// Holds job "a"'s delivery until job "b" is queued behind it, then leaves work for after the completion.
class TailSink final : public ResultSink {
 public:
  void deliver(InferJob& job, Status status, std::vector<OutputTensor>&, const JobTiming&) override {
    std::unique_lock<std::mutex> lock(mu);
    ++delivered;
    ok += status.is_ok() ? 1 : 0;
    cv.notify_all();
    if (job.id != "a") return;
    cv.wait(lock, [&] { return b_queued; });
    in_flight_at_delivery = servable->in_flight();
    const std::thread::id here = std::this_thread::get_id();
    std::function<void()> work = [this, here] {
      std::lock_guard<std::mutex> lock(mu);
      in_flight_after = servable->in_flight();
      same_thread = std::this_thread::get_id() == here;
      ran = true;
      cv.notify_all();
    };
    deferred = after_completion(work);
  }
  Servable* servable = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  int delivered = 0, ok = 0, in_flight_at_delivery = -1, in_flight_after = -1;
  bool b_queued = false, deferred = false, ran = false, same_thread = false;
};

TEST(SchedulerHooks, AfterCompletionWorkRunsOnceTheRequestIsHandedOn) {
  OneRequestAffine model(200);  // one infer request: "b" waits for "a"'s
  Servable* s = model.servable.get();
  ASSERT_TRUE(s);
  auto sink = std::make_shared<TailSink>();
  sink->servable = s;
  std::function<void()> none = [] {};
  EXPECT_FALSE(after_completion(none)) << "no completion is being delivered on the test's thread";
  ASSERT_TRUE(s->submit(f32_job("a", {1, 4}, ramp(4, 1.0f), sink)).is_ok());
  {
    std::unique_lock<std::mutex> lock(sink->mu);
    ASSERT_TRUE(sink->cv.wait_for(lock, std::chrono::seconds(60), [&] { return sink->delivered == 1; }));
  }
  ASSERT_TRUE(s->submit(f32_job("b", {1, 4}, ramp(4, 2.0f), sink)).is_ok());
  {
    std::lock_guard<std::mutex> lock(sink->mu);
    sink->b_queued = true;
    sink->cv.notify_all();
  }
  s->drain();
  std::unique_lock<std::mutex> lock(sink->mu);
  ASSERT_TRUE(sink->cv.wait_for(lock, std::chrono::seconds(60), [&] { return sink->ran; }));
  EXPECT_EQ(sink->ok, 2);
  EXPECT_TRUE(sink->deferred);
  EXPECT_TRUE(sink->same_thread);
  EXPECT_EQ(sink->in_flight_at_delivery, 2) << "a still running, b queued";
  EXPECT_EQ(sink->in_flight_after, 1) << "a done and b started on the request a gave back";
}

TEST(SchedulerHooks, OnePreemptedInlineRunKeepsAShortModelInline) {
  // a busy machine preempts one inline run for milliseconds: the model's runs stay on the submitting
  // thread (they used to go asynchronous for hundreds of runs, one inline probe excepted)
  auto clock = std::make_shared<testkit::ThreadStepClock>(1000);  // 1 µs hops
  OneRequestAffine model(200, clock);
  ASSERT_TRUE(model.servable);
  auto sink = std::make_shared<ThreadSink>();
  auto one = [&](const std::string& id) { model.run_one(id, sink); };
  for (int i = 0; i < 4; ++i) one("warm" + std::to_string(i));  // the first asynchronous, then inline
  clock->owner_step_ns = 5'000'000;  // every reading in this run 5 ms later: a run of over 10 ms
  one("preempted");
  clock->owner_step_ns = 1;
  for (int i = 0; i < 3; ++i) one("after" + std::to_string(i));
  std::lock_guard<std::mutex> lock(sink->mu);
  EXPECT_EQ(sink->ok, 8);
  const std::thread::id here = std::this_thread::get_id();
  EXPECT_NE(sink->threads["warm0"], here) << "the first run is measured: asynchronous";
  EXPECT_EQ(sink->threads["warm3"], here);
  EXPECT_EQ(sink->threads["preempted"], here);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sink->threads["after" + std::to_string(i)], here) << "after" << i;
}

}  // namespace
}  // namespace ovfast

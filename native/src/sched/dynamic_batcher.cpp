#include "ovfast/sched/dynamic_batcher.hpp"

#ifdef __linux__
#include <sys/prctl.h>
#endif

namespace ovfast {

DynamicBatcher::DynamicBatcher(ModelInstance& model, ServableMetrics& metrics, std::shared_ptr<Clock> clock)
    : PoolScheduler(model, metrics, std::move(clock), true), opts_(model.options().batching) {
  waiter_ = clock_->subscribe(&mu_, &batch_cv_);
  timer_ = std::thread([this] { timer_loop(); });
}

DynamicBatcher::~DynamicBatcher() {
  drain();  // the timer thread may be needed to dispatch what is queued
  {
    std::lock_guard<std::mutex> lock(mu_);
    timer_stop_ = true;
    batch_cv_.notify_all();
  }
  timer_.join();
  clock_->unsubscribe(waiter_);
}

bool DynamicBatcher::plan_locked(uint64_t now_ns, std::vector<size_t>* take, uint64_t* deadline_ns) {
  BatchPlan plan = plan_batch(pending_, opts_, now_ns, flushing_locked());
  if (!plan.dispatch) {
    *deadline_ns = plan.deadline_ns;
    return false;
  }
  *take = std::move(plan.take);
  return true;
}

void DynamicBatcher::waiting_locked(bool job_queued) {
  // NOTE: a new job needs the timer only when it heads the queue (a new
  // deadline); otherwise the head's deadline stands, or a freed request
  // re-plans. A deadline left stale by an inline launch is early, never late.
  if (!job_queued || pending_.size() == 1) batch_cv_.notify_one();
}

void DynamicBatcher::timer_loop() {
#ifdef __linux__
  // NOTE: Linux rounds timed waits up by the thread's timer slack (50 µs by default);
  // the queue delay is a budget in microseconds, so this thread asks for none.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
  std::unique_lock<std::mutex> lock(mu_);
  while (!timer_stop_) {
    Clock::Reading r = clock_->read();
    Launch launch;
    uint64_t deadline;
    const bool go = launch_locked(r.ns, &launch, &deadline);
    if (go || !launch.dropped.empty()) {
      lock.unlock();
      dispatch(std::move(launch));
      lock.lock();
      continue;
    }
    clock_->wait_until(lock, *waiter_, deadline, r);
  }
}

}  // namespace ovfast

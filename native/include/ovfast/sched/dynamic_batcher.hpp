// DynamicBatcher: jobs wait in the queue until plan_batch() (batching.hpp)
// forms a batch that is due — full, of a preferred size, or its oldest job has
// waited max_queue_delay_us — and then run as one inference, each job getting
// its own rows back.
//
// Threads: a due batch starts on the thread that made it due (the submitter,
// or the OpenVINO callback that freed an infer request). One thread per
// batcher only keeps deadlines; it waits on the injected Clock, so tests move
// time by hand (ManualClock). Ownership and locking: see PoolScheduler; the
// timer thread sleeps on batch_cv_ under mu_.
#pragma once
#include <thread>

#include "ovfast/sched/pool_scheduler.hpp"

namespace ovfast {

class DynamicBatcher final : public PoolScheduler {
 public:
  // model.options().batching must be enabled.
  DynamicBatcher(ModelInstance& model, ServableMetrics& metrics, std::shared_ptr<Clock> clock);
  ~DynamicBatcher() override;

 protected:
  bool plan_locked(uint64_t now_ns, std::vector<size_t>* take, uint64_t* deadline_ns) override;
  void waiting_locked(bool job_queued) override;

 private:
  void timer_loop();

  const BatchingOptions opts_;
  std::condition_variable batch_cv_;  // a job queued, a request freed, flush, stop
  std::shared_ptr<Clock::Waiter> waiter_;
  bool timer_stop_ = false;           // guarded by mu_
  std::thread timer_;
};

}  // namespace ovfast

// DirectScheduler: each job runs alone on the next free infer request, in
// arrival order. Ownership, locking and threads: see PoolScheduler.
#pragma once
#include "ovfast/sched/pool_scheduler.hpp"

namespace ovfast {

class DirectScheduler final : public PoolScheduler {
 public:
  DirectScheduler(ModelInstance& model, ServableMetrics& metrics, std::shared_ptr<Clock> clock)
      : PoolScheduler(model, metrics, std::move(clock), false) {}

 protected:
  bool plan_locked(uint64_t, std::vector<size_t>* take, uint64_t*) override {
    take->assign(1, 0);
    return true;
  }
};

}  // namespace ovfast

// EchoScheduler: the transport floor. No inference: each job's outputs are its
// inputs (views of the request's memory), delivered at once on the submitting
// thread. Stateless; any thread.
#pragma once
#include "ovfast/metrics.hpp"
#include "ovfast/model/model_instance.hpp"
#include "ovfast/sched/scheduler.hpp"

namespace ovfast {

class EchoScheduler final : public Scheduler {
 public:
  EchoScheduler(const ModelInstance& model, ServableMetrics& metrics) : model_(model), metrics_(metrics) {}
  Status submit(std::unique_ptr<InferJob>& job) override;
  int queued() override { return 0; }
  int active() const override { return 0; }
  void drain() override {}
  void flush() override {}

 private:
  const ModelInstance& model_;
  ServableMetrics& metrics_;
};

}  // namespace ovfast

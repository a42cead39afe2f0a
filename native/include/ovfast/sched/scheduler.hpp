// Scheduler: decides when and with what a validated job runs. Implementations:
// DirectScheduler (one job per infer request), DynamicBatcher (jobs gathered
// into batches), EchoScheduler (no inference: the transport floor); a sequence
// scheduler (stateful models) and a DAG executor are further ones.
//
// Contract: submit() takes a job whose inputs are validated and in model
// order. On OK its outcome reaches job->sink exactly once, on some thread,
// possibly before submit() returns, and `job` is left empty. On error `job`
// is untouched and the caller reports the error.
// Threading: every method may be called from any thread.
#pragma once
#include <memory>

#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Before the job is validated against the model: takes out of it what is
  // the scheduler's own (a sequence scheduler's special inputs). An error
  // refuses the job.
  virtual Status prepare(InferJob& job) { (void)job; return Status::ok(); }
  virtual Status submit(std::unique_ptr<InferJob>& job) = 0;
  // Jobs waiting for an infer request (or for their batch).
  virtual int queued() = 0;
  // Model executions in progress.
  virtual int active() const = 0;
  // Blocks until nothing is queued or running; queued batches go without
  // waiting out their delay.
  virtual void drain() = 0;
  // From now on nothing waits out a queue delay (shutdown). Non-blocking.
  virtual void flush() = 0;
};

}  // namespace ovfast

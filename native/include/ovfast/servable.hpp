// Servable: one served model version — its ModelInstance, its Scheduler
// (echo, direct or dynamic batching, chosen from the options) and its metrics —
// behind one submit().
//
// submit() validates a job and hands it to the scheduler. A job that carries
// JPEG/PNG images is decoded first on the shared WorkerPool, never on the
// submitting thread (the asyncio loop); its errors then arrive through its sink.
// Ownership: owns everything above; a submitted job is the scheduler's until
// its sink has it. Threading: every method may be called from any thread; the
// destructor first waits for everything in flight (decodes included).
#pragma once
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include <openvino/runtime/core.hpp>

#include "ovfast/clock.hpp"
#include "ovfast/metrics.hpp"
#include "ovfast/model/model_instance.hpp"
#include "ovfast/request.hpp"
#include "ovfast/sched/scheduler.hpp"
#include "ovfast/sched/sequence.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

class Servable {
 public:
  // Builds the ModelInstance (blocking: seconds) and its scheduler. `clock`:
  // the batcher's clock (null = the steady clock).
  static Status create(ov::Core& core, const ModelOptions& opts, std::shared_ptr<Clock> clock,
                       std::unique_ptr<Servable>* out);
  // A pipeline served like a model (dag/dag_executor.hpp): no ModelInstance;
  // `make` builds its scheduler over the servable's metrics, which checks
  // requests itself (Scheduler::prepare). inputs/outputs: its signature.
  static std::unique_ptr<Servable> create_pipeline(
      std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs,
      const std::function<std::unique_ptr<Scheduler>(ServableMetrics&)>& make);
  ~Servable();

  // On OK the job's outcome reaches job->sink exactly once. On error nothing
  // reaches the sink and the caller still owns job->keepalive/context.
  Status submit(std::unique_ptr<InferJob> job);

  // What `job`'s BYTES inputs will hold once bound as this servable's string
  // inputs (BytesElements::string_tensor_bytes; 0 for BYTES sent to a
  // non-string input: refused, or decoded images that take views). A
  // transport reserves it with the request's size before submit().
  size_t string_tensor_bytes(const InferJob& job) const;

  // A pipeline has no model: callers check is_pipeline() first.
  const ModelInstance& model() const { return *model_; }
  bool is_pipeline() const { return !model_; }
  const std::vector<TensorInfo>& inputs() const { return model_ ? model_->inputs() : inputs_; }
  const std::vector<TensorInfo>& outputs() const { return model_ ? model_->outputs() : outputs_; }
  int nireq() const { return !model_ || model_->echo() ? 0 : model_->pool_size(); }
  int streams() const { return model_ ? model_->streams() : 0; }
  int active() const { return scheduler_->active(); }
  int queued() { return scheduler_->queued(); }
  // Jobs decoding, queued or running: 0 means nothing would be cut off by an
  // unload now. Takes the decode lock briefly; for residency decisions, not
  // for a per-request path.
  int in_flight();
  int max_batch_size() const { return model_ ? model_->options().batching.max_batch_size : 0; }
  // What create() cost in memory: read + compile + infer requests, measured
  // around it (memory_usage.hpp), bytes.
  int64_t memory_bytes() const { return memory_bytes_; }
  ServableMetrics& metrics() { return metrics_; }
  // Blocks until nothing is decoding, queued or running.
  void drain();
  void flush() { scheduler_->flush(); }
  // Stateful models: one pass of the idle-sequence cleaner (SequenceScheduler::sweep_idle;
  // returns the sequences removed), and the live sequences. Zeros for other models.
  size_t sweep_idle_sequences();
  SequenceStats sequence_stats();

 private:
  Servable() = default;
  void decode_then_schedule(std::unique_ptr<InferJob> job);

  std::unique_ptr<ModelInstance> model_;  // null for a pipeline
  std::vector<TensorInfo> inputs_, outputs_;  // a pipeline's signature
  ServableMetrics metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  SequenceScheduler* sequences_ = nullptr;  // scheduler_, when the model is stateful
  std::mutex decode_mu_;
  std::condition_variable decode_cv_;
  int decoding_ = 0;  // guarded by decode_mu_: jobs on the WorkerPool
  int64_t memory_bytes_ = 0;
};

}  // namespace ovfast

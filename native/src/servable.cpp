#include "ovfast/servable.hpp"

#include "ovfast/exec/result_sink.hpp"
#include "ovfast/exec/worker_pool.hpp"
#include "ovfast/memory_usage.hpp"
#include "ovfast/sched/direct.hpp"
#include "ovfast/sched/dynamic_batcher.hpp"
#include "ovfast/sched/echo.hpp"
#include "ovfast/sched/sequence.hpp"

namespace ovfast {

Status Servable::create(ov::Core& core, const ModelOptions& opts, std::shared_ptr<Clock> clock,
                        std::unique_ptr<Servable>* out) {
  const MemorySample before = sample_memory();
  std::unique_ptr<Servable> s(new Servable());
  OVF_RETURN_IF_ERROR(ModelInstance::create(core, opts, &s->model_));
  if (!clock) clock = steady_clock();
  try {
    if (opts.echo) {
      s->scheduler_ = std::make_unique<EchoScheduler>(*s->model_, s->metrics_);
    } else if (opts.stateful) {
      auto seq = std::make_unique<SequenceScheduler>(*s->model_, s->metrics_, clock,
                                                     SequenceOptions{opts.max_sequence_number});
      s->sequences_ = seq.get();
      s->scheduler_ = std::move(seq);
    } else if (opts.batching.enabled()) s->scheduler_ = std::make_unique<DynamicBatcher>(*s->model_, s->metrics_, clock);
    else s->scheduler_ = std::make_unique<DirectScheduler>(*s->model_, s->metrics_, clock);
  } catch (const std::exception& e) {
    return {StatusCode::FAILED_PRECONDITION, std::string("Cannot create infer requests: ") + e.what()};
  }
  // The schedulers create their infer requests (and buffers) above: all counted.
  s->memory_bytes_ = load_cost(before, sample_memory());
  *out = std::move(s);
  return Status::ok();
}

std::unique_ptr<Servable> Servable::create_pipeline(
    std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs,
    const std::function<std::unique_ptr<Scheduler>(ServableMetrics&)>& make) {
  std::unique_ptr<Servable> s(new Servable());
  s->inputs_ = std::move(inputs);
  s->outputs_ = std::move(outputs);
  s->scheduler_ = make(s->metrics_);
  return s;
}

Servable::~Servable() {
  if (!scheduler_) return;  // create() failed
  drain();
  scheduler_.reset();  // before the model it runs
}

int Servable::in_flight() {
  int decoding;
  {
    std::lock_guard<std::mutex> lock(decode_mu_);
    decoding = decoding_;
  }
  return decoding + scheduler_->queued() + scheduler_->active();
}

void Servable::drain() {
  {
    std::unique_lock<std::mutex> lock(decode_mu_);
    decode_cv_.wait(lock, [&] { return decoding_ == 0; });
  }
  scheduler_->drain();
}

size_t Servable::string_tensor_bytes(const InferJob& job) const {
  size_t total = 0;
  for (const InputTensor& in : job.inputs) {
    if (in.dtype != DataType::BYTES) continue;
    for (const TensorInfo& info : inputs())
      if (info.name == in.name && info.dtype == DataType::BYTES) total += in.bytes.string_tensor_bytes();
  }
  return total;
}

Status Servable::submit(std::unique_ptr<InferJob> job) {
  if (job->received_ns == 0) job->received_ns = now_ns();
  if (model_ && !model_->echo() && model_->needs_decode(*job)) {
    metrics_.job_accepted(job->metrics_route);
    {
      std::lock_guard<std::mutex> lock(decode_mu_);
      ++decoding_;
    }
    // NOTE: a std::function must be copyable: the job travels as a raw pointer, owned again at once.
    InferJob* raw = job.release();
    WorkerPool::shared().post([this, raw] { decode_then_schedule(std::unique_ptr<InferJob>(raw)); });
    return Status::ok();
  }
  Status st = scheduler_->prepare(*job);
  if (st.is_ok() && model_) st = model_->validate(*job);
  if (!st.is_ok()) {
    metrics_.job_refused(job->metrics_route, job->received_ns);
    return st;
  }
  metrics_.job_accepted(job->metrics_route);
  st = scheduler_->submit(job);
  if (!st.is_ok()) metrics_.job_done(job->metrics_route, job->received_ns, false, false, 0, 0, 0);
  return st;
}

void Servable::decode_then_schedule(std::unique_ptr<InferJob> job) {
  Status st = model_->decode_images(*job);
  if (st.is_ok()) st = scheduler_->prepare(*job);
  if (st.is_ok()) st = model_->validate(*job);
  if (st.is_ok()) st = scheduler_->submit(job);
  if (!st.is_ok()) {
    // The submitter has returned: the error travels through the sink like a result.
    metrics_.job_done(job->metrics_route, job->received_ns, false, false, 0, 0, 0);
    std::vector<OutputTensor> none;
    job->sink->deliver(*job, st, none, {});
  }
  std::lock_guard<std::mutex> lock(decode_mu_);
  if (--decoding_ == 0) decode_cv_.notify_all();
}

size_t Servable::sweep_idle_sequences() { return sequences_ ? sequences_->sweep_idle() : 0; }

SequenceStats Servable::sequence_stats() { return sequences_ ? sequences_->stats() : SequenceStats{}; }

}  // namespace ovfast

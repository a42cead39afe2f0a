#include "ovfast/sched/pool_scheduler.hpp"

#include <algorithm>

#include "ovfast/exec/result_sink.hpp"

namespace ovfast {
namespace {

uint64_t us_between(uint64_t from_ns, uint64_t to_ns) { return to_ns > from_ns ? (to_ns - from_ns) / 1000 : 0; }

}  // namespace

PoolScheduler::PoolScheduler(ModelInstance& model, ServableMetrics& metrics, std::shared_ptr<Clock> clock,
                             bool batching)
    : model_(model), metrics_(metrics), clock_(std::move(clock)), batching_(batching) {
  runs_.resize(static_cast<size_t>(std::max(1, model.pool_size())));
  pool_ = std::make_unique<InferPool>(model.compiled(), static_cast<int>(runs_.size()),
                                      [this](size_t slot, std::exception_ptr err) { on_done(slot, err); });
}

PoolScheduler::~PoolScheduler() {
  drain();
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
}

int PoolScheduler::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(pending_.size());
}

void PoolScheduler::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  ++flushing_;
  waiting_locked(false);  // a batcher re-plans at once with flushing on
  idle_cv_.wait(lock, [&] { return pending_.empty() && answering_ == 0 && pool_->idle() == pool_->size(); });
  --flushing_;
}

void PoolScheduler::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  flush_all_ = true;
  waiting_locked(false);
}

Status PoolScheduler::submit(std::unique_ptr<InferJob>& job) {
  const int64_t rows = batching_ ? job_rows(*job) : 1;
  const uint64_t t0 = clock_->now_ns();
  Launch launch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return {StatusCode::UNAVAILABLE, "Model is being unloaded"};
    const size_t bound = static_cast<size_t>(std::max(0, model_.options().max_queue_size));
    if (bound > 0 && pending_.size() >= bound) {
      metrics_.rejected_queue_full.fetch_add(1, std::memory_order_relaxed);
      return {StatusCode::RESOURCE_EXHAUSTED, "Model queue is full: " + std::to_string(pending_.size()) +
                                                  " requests are waiting (max_queue_size " + std::to_string(bound) +
                                                  "); retry later"};
    }
    pending_.push_back({std::move(job), t0, rows});
    uint64_t deadline;
    // A run that is due starts on this thread; a batcher's thread only keeps time.
    if (!launch_locked(t0, &launch, &deadline)) waiting_locked(true);
  }
  dispatch(std::move(launch));
  return Status::ok();
}

bool PoolScheduler::launch_locked(uint64_t now, Launch* out, uint64_t* deadline_ns) {
  *deadline_ns = kNever;
  if (pool_->idle() > 0 || flushing_locked()) {
    // NOTE: looked at only when something could start (or everything must go):
    // a job waiting behind busy requests is judged when its turn can come.
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->job->unwanted(now).is_ok()) {
        ++it;
        continue;
      }
      out->dropped.push_back(std::move(*it));
      it = pending_.erase(it);
    }
    answering_ += static_cast<int>(out->dropped.size());
  }
  if (pending_.empty() || stopping_ || pool_->idle() == 0) return false;
  std::vector<size_t> take;
  if (!plan_locked(now, &take, deadline_ns)) return false;
  out->lease = pool_->try_lease();  // cannot fail: idle() > 0 and leases move only under mu_
  out->jobs.clear();
  out->jobs.reserve(take.size());
  for (size_t i : take) out->jobs.push_back(std::move(pending_[i]));
  // take is ascending: erase from the back so earlier indices stay put
  for (size_t k = take.size(); k-- > 0;) pending_.erase(pending_.begin() + static_cast<long>(take[k]));
  return true;
}

void PoolScheduler::dispatch(Launch launch) {
  if (!launch.dropped.empty()) answer_dropped(launch.dropped);
  if (launch.lease) start(std::move(launch));
}

void PoolScheduler::answer_dropped(std::vector<QueuedJob>& dropped) {
  const uint64_t now = clock_->now_ns();
  for (QueuedJob& q : dropped) {
    std::unique_ptr<InferJob> job = std::move(q.job);
    Status st = job->unwanted(now);
    if (st.is_ok()) st = {StatusCode::CANCELLED, "Request dropped"};  // cannot happen: unwanted stays unwanted
    metrics_.job_done(job->metrics_route, job->received_ns, false, false, 0, 0, 0);
    std::vector<OutputTensor> none;
    job->sink->deliver(*job, std::move(st), none, {0, 0});
  }
  std::lock_guard<std::mutex> lock(mu_);
  answering_ -= static_cast<int>(dropped.size());
  // NOTE: under the lock, as in on_done: drain() may proceed once this is seen.
  idle_cv_.notify_all();
}

namespace {
// Set while a thread runs an OpenVINO completion callback (or holds a
// NoInlineRuns): runs it starts go through start_async, never inline (see
// PoolScheduler::start).
thread_local bool no_inline = false;
}  // namespace

NoInlineRuns::NoInlineRuns() : was_(no_inline) { no_inline = true; }
NoInlineRuns::~NoInlineRuns() { no_inline = was_; }

namespace {
// The work sinks left for after the completion this thread delivers (null: none being delivered).
thread_local std::vector<std::function<void()>>* tail = nullptr;
}  // namespace

bool after_completion(std::function<void()>& work) {
  if (tail == nullptr) return false;
  tail->push_back(std::move(work));
  return true;
}

// An asynchronous run's time includes the hop to an OpenVINO thread and back,
// which a busy machine stretches far beyond the run itself (a 30 µs MLP measured
// ~800 µs with 150 models served on 2 loaded cores, so it never went inline).
// So a model whose asynchronous mean is within kProbeFactor times the limit
// runs every kProbeEvery-th run inline, to measure the run alone; one whose
// inline runs measured too long is probed kProbeEveryLong runs apart.
constexpr uint64_t kProbeFactor = 50;
constexpr uint32_t kProbeEvery = 16;
constexpr uint32_t kProbeEveryLong = 256;

bool PoolScheduler::short_runs() const {
  if (!allow_inline_ || batching_) return false;
  const uint64_t limit = model_.options().inline_max_us * 1000;
  const uint64_t in = avg_inline_ns_.load(std::memory_order_relaxed);
  const uint64_t async = avg_infer_ns_.load(std::memory_order_relaxed);
  if (in != 0 ? in <= limit : async != 0 && async <= limit) return true;
  if (async == 0 || async > limit * kProbeFactor) return false;  // not measured yet, or long
  return probe_.fetch_add(1, std::memory_order_relaxed) % (in == 0 ? kProbeEvery : kProbeEveryLong) == 0;
}

void PoolScheduler::start(Launch launch) {
  // NOTE: a run of a model whose runs are short (measured) goes inline, on this
  // thread: OpenVINO's synchronous infer() costs about half the CPU of
  // start_async() and its hop to an executor thread and back, with no context
  // switch. Each inline run hands its request to the next queued job here, in
  // this loop (not by recursion). Never inline inside a completion callback.
  for (;;) {
    const size_t slot = launch.lease->slot();
    Run& run = runs_[slot];
    run.lease = std::move(launch.lease);
    run.jobs = std::move(launch.jobs);
    active_.fetch_add(1, std::memory_order_relaxed);
    std::exception_ptr err;
    try {
      run.start_ns = clock_->now_ns();
      if (batching_) {
        run.rows = 0;
        for (const QueuedJob& q : run.jobs) {
          run.rows += std::max<int64_t>(q.rows, 0);
          metrics_.batch_queue_delay_us.observe(us_between(q.enqueue_ns, run.start_ns));
        }
        metrics_.batch_size.observe(static_cast<uint64_t>(run.rows));
      }
      bind_inputs(run);
      before_run(run.lease->request(), run.jobs);
      run.inline_run = !no_inline && short_runs();
      if (!run.inline_run) {
        run.lease->request().start_async();
        return;
      }
      run.lease->request().infer();
    } catch (...) {
      // A failed start completes like a failed inference, so the request goes back to the pool.
      // NOTE: current_exception keeps the thrown type (and its message); make_exception_ptr(e) would slice it.
      err = std::current_exception();
    }
    Launch next;
    if (!complete(slot, err, &next)) return;
    if (!next.dropped.empty()) answer_dropped(next.dropped);
    if (!next.lease) return;
    launch = std::move(next);
  }
}

void PoolScheduler::bind_inputs(Run& run) {
  ov::InferRequest& request = run.lease->request();
  run.gathered = run.jobs.size() > 1;
  if (!run.gathered) {
    InferJob& job = *run.jobs.front().job;
    for (size_t i = 0; i < job.inputs.size(); ++i) {
      InputTensor& in = job.inputs[i];
      ov::Shape shape(in.shape.begin(), in.shape.end());
      ov::Tensor t;
      if (in.dtype == DataType::BYTES) {
        // The elements are copied here, once, from the request (validated: the count is the shape's).
        t = ov::Tensor(ov::element::string, shape);
        in.bytes.write_to(t.data<std::string>());
      } else if (in.size == 0) {
        t = ov::Tensor(datatype_info(in.dtype).element, shape);
      } else {
        // Zero-copy: the tensor views the request's memory (kept alive by the job).
        t = ov::Tensor(datatype_info(in.dtype).element, shape, const_cast<uint8_t*>(in.data));
      }
      request.set_input_tensor(i, t);
    }
    return;
  }
  // A batch: each input's rows are copied once, job after job, into one tensor.
  std::vector<QueuedJob*> jobs;
  run.row0.clear();
  int64_t row = 0;
  for (QueuedJob& q : run.jobs) {
    jobs.push_back(&q);
    run.row0.push_back(row);
    row += q.rows;
  }
  const InferJob& first = *run.jobs.front().job;
  run.batch_inputs.resize(first.inputs.size());
  for (size_t i = 0; i < first.inputs.size(); ++i) {
    const InputTensor& in = first.inputs[i];
    ov::Shape shape(in.shape.begin(), in.shape.end());
    shape[0] = static_cast<size_t>(run.rows);
    const ov::element::Type et = datatype_info(in.dtype).element;  // BYTES: string
    ov::Tensor& t = run.batch_inputs[i];
    // NOTE: reused while the element type holds; set_shape reallocates only to grow.
    if (!t || t.get_element_type() != et) t = ov::Tensor(et, shape);
    else t.set_shape(shape);
    gather_input(jobs, i, t);
    if (et != ov::element::string) metrics_.batch_copied_bytes.fetch_add(t.get_byte_size(), std::memory_order_relaxed);
    request.set_input_tensor(i, t);
  }
}

void PoolScheduler::on_done(size_t slot, std::exception_ptr err) {
  // Hand the infer request on. NOTE: OpenVINO allows start_async() from inside
  // its callback, so queued work starts here with no thread hop.
  NoInlineRuns in_completion;
  std::vector<std::function<void()>> later;
  tail = &later;
  Launch next;
  if (complete(slot, err, &next)) dispatch(std::move(next));
  // NOTE: `this` may be gone from here on (drain() saw the pool idle); the work holds what it needs.
  tail = nullptr;
  for (std::function<void()>& work : later) work();
}

bool PoolScheduler::complete(size_t slot, std::exception_ptr err, Launch* next_out) {
  Run& run = runs_[slot];
  finish(run, err);
  Launch& next = *next_out;
  bool go;
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.fetch_sub(1, std::memory_order_relaxed);
    run.lease.reset();
    uint64_t deadline;
    go = launch_locked(clock_->now_ns(), &next, &deadline);
    if (!go) {
      if (!pending_.empty()) waiting_locked(false);
      // NOTE: notified under the lock: once idle, drain() (then the destructor)
      // may proceed, so nothing of `this` is touched after — unless jobs were
      // dropped: answering_ holds drain() until answer_dropped() is done.
      idle_cv_.notify_all();
    }
  }
  return go || !next.dropped.empty();
}

void PoolScheduler::finish(Run& run, std::exception_ptr err) {
  std::vector<QueuedJob> jobs = std::move(run.jobs);
  run.jobs.clear();
  const uint64_t end = clock_->now_ns();
  const uint64_t infer_us = us_between(run.start_ns, end);
  if (!err && end > run.start_ns) {
    // a running mean over about the last 8 runs of its kind (a benign race between completions: it is a hint)
    std::atomic<uint64_t>& mean = run.inline_run ? avg_inline_ns_ : avg_infer_ns_;
    uint64_t ns = end - run.start_ns;
    // NOTE: an inline run's wall time includes any preemption of this thread (a busy machine: one
    // run in a few hundred took milliseconds with 8 clients on 2 cores), and one such run used to
    // lift the mean past the limit and send the model's runs off the submitting thread for hundreds
    // of runs. Counted at most twice the limit, it takes a run of slow ones to do that.
    if (run.inline_run) ns = std::min<uint64_t>(ns, 2 * model_.options().inline_max_us * 1000);
    const uint64_t avg = mean.load(std::memory_order_relaxed);
    mean.store(avg == 0 ? ns : (avg * 7 + ns) / 8, std::memory_order_relaxed);
  }
  const std::vector<TensorInfo>& outputs = model_.outputs();
  Status run_status;
  std::vector<ov::Tensor> results;  // the request's own output buffers, read once
  if (err) {
    try {
      std::rethrow_exception(err);
    } catch (const std::exception& e) {
      run_status = internal_error(std::string("Internal inference error - ") + e.what());
    } catch (...) {
      run_status = internal_error("Internal inference error");
    }
  } else {
    try {
      ov::InferRequest& request = run.lease->request();
      for (size_t i = 0; i < outputs.size(); ++i) {
        results.push_back(request.get_output_tensor(i));
        if (outputs[i].dtype == DataType::INVALID)
          throw std::runtime_error("output " + outputs[i].name + " has an element type no API can carry");
        const ov::Shape& sh = results.back().get_shape();
        if (run.gathered && (sh.empty() || static_cast<int64_t>(sh[0]) != run.rows))
          throw std::runtime_error("output " + outputs[i].name + " has shape " +
                                   shape_to_string(Shape(sh.begin(), sh.end())) + " for a batch of " +
                                   std::to_string(run.rows) + " rows");
      }
      metrics_.execution_done();
    } catch (const std::exception& e) {
      run_status = internal_error(std::string("Internal server error - cannot read outputs: ") + e.what());
      results.clear();
    }
  }
  after_run(run.lease->request(), jobs, run_status);
  if (!run_status.is_ok()) results.clear();
  for (size_t k = 0; k < jobs.size(); ++k) {
    std::unique_ptr<InferJob> job = std::move(jobs[k].job);
    Status st = run_status;
    std::vector<OutputTensor> outs;
    if (st.is_ok()) {
      try {
        auto collect = [&](size_t idx) {
          // Batched: this job's rows, a view into the batch output (zero-copy).
          ov::Tensor t = run.gathered ? slice_rows(results[idx], run.row0[k], jobs[k].rows) : results[idx];
          OutputTensor o;
          o.name = outputs[idx].name;
          o.dtype = outputs[idx].dtype;
          const ov::Shape& sh = t.get_shape();
          o.shape.assign(sh.begin(), sh.end());
          o.tensor = std::move(t);
          outs.push_back(std::move(o));
        };
        if (job->requested_outputs.empty()) {
          for (size_t i = 0; i < outputs.size(); ++i) collect(i);
        } else {
          for (const std::string& name : job->requested_outputs) collect(static_cast<size_t>(model_.output_index(name)));
        }
        add_outputs(*job, outs);
      } catch (const std::exception& e) {
        st = internal_error(std::string("Internal server error - cannot read outputs: ") + e.what());
        outs.clear();
      }
    }
    const uint64_t wait_us = us_between(jobs[k].enqueue_ns, run.start_ns);
    const uint64_t rows = batching_ ? static_cast<uint64_t>(std::max<int64_t>(jobs[k].rows, 0)) : 1;
    // NOTE: counted before the request is handed on, so a drain() that waits
    // for idle requests also waits for these writes.
    metrics_.job_done(job->metrics_route, job->received_ns, st.is_ok(), true, wait_us, infer_us, rows);
    job->sink->deliver(*job, std::move(st), outs, {infer_us, wait_us});
  }
}

}  // namespace ovfast

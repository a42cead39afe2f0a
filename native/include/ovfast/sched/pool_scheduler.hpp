// PoolScheduler: what every scheduler that runs jobs on an InferPool shares —
// a queue of jobs, leasing an infer request, binding inputs (zero-copy for one
// job, one counted copy to gather a batch), reading outputs and handing each
// job its rows through its ResultSink, and the per-job accounting.
// Subclasses decide only which queued jobs run next (plan_locked).
//
// Ownership: owns the InferPool and the queued jobs; a running job belongs to
// the lease it runs on until its sink has it.
// Locking: mu_ guards the queue, the flags and every lease hand-over (leases
// are taken and given back only under mu_, so a job is never queued while an
// infer request sits idle). Lock order: mu_, then the pool's own mutex.
// Threads: submit() on any thread; completions on OpenVINO callback threads,
// which start the next queued run themselves (no thread hop). A model whose
// runs are measured short (< 200 µs) runs inline instead: synchronously, on
// the thread that submits (or that finished the previous inline run).
// Unwanted jobs (InferJob::unwanted: past their deadline, or cancelled) are
// taken out of the queue whenever a run is planned and answered with that
// status, never run; they count as failed requests.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "ovfast/batching.hpp"
#include "ovfast/clock.hpp"
#include "ovfast/exec/infer_pool.hpp"
#include "ovfast/metrics.hpp"
#include "ovfast/model/model_instance.hpp"
#include "ovfast/sched/scheduler.hpp"

namespace ovfast {

// While one lives, PoolScheduler runs nothing inline on this thread: the thread
// has more to start after this submit (a pipeline launching the sub-requests of
// a demultiplexed node one after another), which an inline run would hold up
// for a whole inference. Nests.
class NoInlineRuns {
 public:
  NoInlineRuns();
  ~NoInlineRuns();
  NoInlineRuns(const NoInlineRuns&) = delete;
  NoInlineRuns& operator=(const NoInlineRuns&) = delete;

 private:
  bool was_;
};

// Work a ResultSink leaves for after the completion that delivered to it: run
// on the same OpenVINO callback thread once the infer request has been handed
// on (the next queued job started), so the request does not sit idle while it
// runs (a pipeline's next node). False, and `work` untouched, when this thread
// is not delivering a completion (the caller runs it itself).
bool after_completion(std::function<void()>& work);

class PoolScheduler : public Scheduler {
 public:
  ~PoolScheduler() override;
  Status submit(std::unique_ptr<InferJob>& job) override;
  int queued() override;
  int active() const override { return active_.load(std::memory_order_relaxed); }
  void drain() override;
  void flush() override;

 protected:
  // `batching`: jobs may share a run (rows are gathered, batch metrics kept).
  PoolScheduler(ModelInstance& model, ServableMetrics& metrics, std::shared_ptr<Clock> clock, bool batching);
  // Which queued jobs (ascending indices into pending_, not empty) run next on
  // a free infer request; false: none yet, look again at *deadline_ns (kNever:
  // when something changes). Needs mu_.
  virtual bool plan_locked(uint64_t now_ns, std::vector<size_t>* take, uint64_t* deadline_ns) = 0;
  // A job was queued, or a run finished, and nothing started: work waits for a
  // deadline. Needs mu_.
  virtual void waiting_locked(bool job_queued) { (void)job_queued; }
  // Dispatch whatever can be formed without waiting (drain or flush in progress). Needs mu_.
  bool flushing_locked() const { return flushing_ > 0 || flush_all_; }

  // Hooks for a scheduler that keeps state in the infer request between jobs
  // (sequences). Called with no lock held, by whoever holds the run's lease.
  // Before the run starts, its inputs bound; throwing fails the run as a failed start would.
  virtual void before_run(ov::InferRequest& request, std::vector<QueuedJob>& jobs) { (void)request; (void)jobs; }
  // After the run, its outputs read (they may view the request's buffers), before any job
  // is delivered: `status` is the run's outcome, and may be turned into an error.
  virtual void after_run(ov::InferRequest& request, std::vector<QueuedJob>& jobs, Status& status) {
    (void)request; (void)jobs; (void)status;
  }
  // Outputs a job that succeeded carries besides the model's (e.g. its sequence id).
  virtual void add_outputs(const InferJob& job, std::vector<OutputTensor>& outputs) { (void)job; (void)outputs; }

  struct Launch {
    std::optional<InferPool::Lease> lease;
    std::vector<QueuedJob> jobs;
    std::vector<QueuedJob> dropped;  // unwanted jobs taken out of the queue, to answer
  };
  // Takes the unwanted jobs out of the queue, then the next run if one is due
  // and an infer request is free (true). Needs mu_. Whatever it fills in goes
  // to dispatch() once mu_ is released.
  bool launch_locked(uint64_t now_ns, Launch* out, uint64_t* deadline_ns);
  // Without mu_: answers the dropped jobs, then starts the run if one was taken.
  void dispatch(Launch launch);

  ModelInstance& model_;
  ServableMetrics& metrics_;
  std::shared_ptr<Clock> clock_;
  const bool batching_;
  std::mutex mu_;
  std::condition_variable idle_cv_;   // drain(): a run finished with nothing to start
  std::deque<QueuedJob> pending_;     // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  int flushing_ = 0;                  // guarded by mu_: drain() calls in progress
  bool flush_all_ = false;            // guarded by mu_: flush() was called
  // Short runs may go inline (see short_runs); a subclass whose run hooks
  // must not run on the submitting thread turns it off in its constructor.
  bool allow_inline_ = true;
  int answering_ = 0;                 // guarded by mu_: dropped jobs not yet answered (drain waits)

 private:
  // One per infer request: what runs on it. Touched only by the lease holder.
  struct Run {
    std::optional<InferPool::Lease> lease;
    std::vector<QueuedJob> jobs;
    int64_t rows = 0;                    // rows of a gathered batch
    std::vector<int64_t> row0;           // each job's first row in a gathered batch
    bool gathered = false;               // inputs copied into batch_inputs (more than one job)
    std::vector<ov::Tensor> batch_inputs;  // reused across batches
    uint64_t start_ns = 0;
    bool inline_run = false;             // run with infer() on the starting thread (see short_runs)
  };
  // Runs the launch (and, inline, the runs that follow it; see short_runs).
  void start(Launch launch);
  void answer_dropped(std::vector<QueuedJob>& dropped);
  // Whether this run goes inline on the thread that starts it: unbatched, and
  // its runs measured at most ModelOptions::inline_max_us (inline runs' mean when
  // measured, else asynchronous runs'); now and then an inline probe (see .cpp).
  bool short_runs() const;
  // A run finished: its jobs get their outcome, its request goes back; fills
  // *next with what runs next (true when there is something to dispatch).
  bool complete(size_t slot, std::exception_ptr err, Launch* next);
  void bind_inputs(Run& run);
  void on_done(size_t slot, std::exception_ptr err);
  // Reads the run's outputs and hands every job its part. No lock.
  void finish(Run& run, std::exception_ptr err);

  std::vector<Run> runs_;
  std::unique_ptr<InferPool> pool_;
  std::atomic<int> active_{0};
  std::atomic<uint64_t> avg_infer_ns_{0};   // asynchronous runs' mean, start to outputs (0: none yet)
  std::atomic<uint64_t> avg_inline_ns_{0};  // inline runs' mean (0: none yet)
  mutable std::atomic<uint32_t> probe_{0};  // counts runs between inline probes
};

}  // namespace ovfast

// Servable: one compiled model version, its pool of infer requests, and the
// queue of jobs waiting for one.
//
// Threading: submit() may be called from any thread (the binding releases the
// GIL around it). Completions are pushed to the CompletionQueue from OpenVINO
// callback threads; nothing here touches Python.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <openvino/runtime/core.hpp>

#include "ovfast/batching.hpp"
#include "ovfast/clock.hpp"
#include "ovfast/completion.hpp"
#include "ovfast/metrics.hpp"
#include "ovfast/request.hpp"
#include "ovfast/status.hpp"

namespace ovfast {

struct TensorInfo {
  std::string name;
  DataType dtype;
  ov::PartialShape shape;
};

struct ServableOptions {
  std::string model_path;
  std::string device = "CPU";
  ov::AnyMap plugin_config;          // passed to compile_model as is
  int nireq = 0;                      // 0 = optimal_number_of_infer_requests
  std::map<std::string, std::string> shapes;  // input name ("" = the only input) -> "(1,3,-1,1:8)"
  std::string batch_size;             // "", "4", "1:8", "-1"
  bool echo = false;                  // transport-floor mode: no OpenVINO, outputs echo inputs
  // Image inputs (see image_decode.hpp). layouts: input/output name ("" = the
  // only input) -> "NHWC:NCHW" (what clients send : what the model has, built
  // into the model with PrePostProcessor) or "NHWC" (declares the layout).
  std::map<std::string, std::string> layouts;
  std::string color_format;           // "" / "BGR" (OVMS default) or "RGB": decoded channel order
  std::vector<float> mean, scale;     // per-channel, applied in-model; need a layout with C
  // mapping_config.json: tensor name in the model -> the name clients use. The
  // model's tensors are renamed before anything else (shapes and layouts name the
  // public names, as in OVMS), so every API sees only the public names.
  std::map<std::string, std::string> input_names, output_names;
  // Dynamic batching (batching.hpp); needs every input's dim 0 to hold max_batch_size rows.
  BatchingOptions batching;
  std::shared_ptr<Clock> clock;       // the batcher's clock; null = steady_clock()
};

class Servable {
 public:
  // Reads, reshapes and compiles the model. Blocking (seconds).
  static Status create(ov::Core& core, const ServableOptions& opts, std::shared_ptr<CompletionQueue> cq,
                       std::unique_ptr<Servable>* out);
  ~Servable();

  // Validates the job against the model and starts (or queues) it. On error
  // nothing is queued and the caller still owns job->keepalive/context.
  // Ownership: on OK the job (and its keepalive/context) moves into the
  // servable and comes back exactly once through the CompletionQueue.
  Status submit(std::unique_ptr<InferJob> job);

  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  int nireq() const { return static_cast<int>(slots_.size()); }
  int streams() const { return streams_; }
  int active() const { return active_.load(std::memory_order_relaxed); }
  // Jobs waiting for an infer request (or, when batching, for their batch).
  int queued();
  int max_batch_size() const { return opts_.batching.max_batch_size; }
  // Request counters and histograms; updated lock-free from any thread.
  ServableMetrics& metrics() { return metrics_; }
  // Blocks until nothing is queued or running. A batcher dispatches what it
  // holds at once rather than waiting out the queue delay.
  void drain();
  // From now on batches start without waiting out the queue delay (shutdown:
  // what is queued runs at once). Non-blocking.
  void flush();

 private:
  struct Slot {
    ov::InferRequest request;
    std::vector<QueuedJob> jobs;      // what runs: one job, or the jobs of a batch
    int64_t rows = 0;                 // rows of a gathered batch
    std::vector<int64_t> row0;        // each job's first row in a gathered batch
    bool gathered = false;            // inputs copied into `batch_inputs` (more than one job)
    std::vector<ov::Tensor> batch_inputs;  // reused across batches
    uint64_t start_ns = 0;
  };
  // A batch taken from the queue, with the infer request it runs on.
  struct Launch {
    size_t slot = 0;
    std::vector<QueuedJob> jobs;
  };
  Servable() = default;
  Status validate(InferJob& job) const;
  Status check_batchable() const;
  void bind_inputs(Slot& slot);
  void start(size_t slot_index, std::vector<QueuedJob> jobs);
  void on_done(size_t slot_index, std::exception_ptr err);
  void complete_echo(std::unique_ptr<InferJob> job);
  // Batching: takes the next batch if one is due and an infer request is idle;
  // otherwise sets *deadline_ns (kNever: nothing to wait for). Needs mu_.
  bool next_launch_locked(uint64_t now, Launch* out, uint64_t* deadline_ns);
  void batcher_loop();

  ServableOptions opts_;
  std::shared_ptr<CompletionQueue> cq_;
  std::shared_ptr<Clock> clock_;
  ov::CompiledModel compiled_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::vector<bool> image_nhwc_ok_;   // per input: its layout accepts decoded NHWC images
  int color_order_ = 0;               // ColorOrder of decoded images
  int streams_ = 1;
  std::vector<std::unique_ptr<Slot>> slots_;

  std::mutex mu_;
  std::condition_variable cv_;        // drain(): a slot went idle
  std::vector<size_t> idle_;          // guarded by mu_
  std::deque<QueuedJob> pending_;     // guarded by mu_; the batch queue when batching
  bool stopping_ = false;             // guarded by mu_
  int flushing_ = 0;                  // guarded by mu_; drain() calls in progress
  bool flush_all_ = false;            // guarded by mu_; flush() was called
  std::atomic<int> active_{0};
  ServableMetrics metrics_;
  // Batching: the thread that dispatches batches whose queue delay ran out.
  std::condition_variable batch_cv_;  // a job queued, a slot went idle, flush, stop
  std::shared_ptr<Clock::Waiter> waiter_;
  std::thread batcher_;
};

uint64_t now_ns();

}  // namespace ovfast

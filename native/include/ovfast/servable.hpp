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
  int queued();
  // Request counters and histograms; updated lock-free from any thread.
  ServableMetrics& metrics() { return metrics_; }
  // Blocks until nothing is queued or running.
  void drain();

 private:
  struct Slot {
    ov::InferRequest request;
    std::unique_ptr<InferJob> job;
    uint64_t start_ns = 0;
    uint64_t enqueue_ns = 0;
  };
  struct Pending {
    std::unique_ptr<InferJob> job;
    uint64_t enqueue_ns;
  };
  Servable() = default;
  Status validate(InferJob& job) const;
  Status bind_inputs(Slot& slot);
  void start(size_t slot_index, std::unique_ptr<InferJob> job, uint64_t enqueue_ns);
  void on_done(size_t slot_index, std::exception_ptr err);
  void complete_echo(std::unique_ptr<InferJob> job);

  ServableOptions opts_;
  std::shared_ptr<CompletionQueue> cq_;
  ov::CompiledModel compiled_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::vector<bool> image_nhwc_ok_;   // per input: its layout accepts decoded NHWC images
  int color_order_ = 0;               // ColorOrder of decoded images
  int streams_ = 1;
  std::vector<std::unique_ptr<Slot>> slots_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> idle_;          // guarded by mu_
  std::deque<Pending> pending_;       // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::atomic<int> active_{0};
  ServableMetrics metrics_;
};

uint64_t now_ns();

}  // namespace ovfast

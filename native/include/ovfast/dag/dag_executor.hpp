// DagScheduler: runs requests through a pipeline graph (dag_spec.hpp) — the
// Scheduler of a pipeline's Servable, so a pipeline is routed, counted and
// answered like a model.
//
// Execution (OVMS semantics, spec/ovms.md §6): a node runs as soon as all its
// inputs are there. Model nodes are jobs submitted to their model's Servable
// (its scheduler: direct or dynamic batching, its infer pool, its metrics),
// so independent branches run in parallel; custom nodes run on the shared
// WorkerPool. A demultiplexing node's outputs are split along dim 0 into
// sub-requests that flow on through the following nodes; a node with
// gather_from (and the response, for whatever is still split) stacks them back
// in order. JPEG/PNG request inputs are decoded once, on the WorkerPool
// before any node runs, and the pixels are shared by every node they feed
// (model and custom nodes alike). Tensors pass between nodes as ov::Tensors: request inputs and
// custom-node outputs without copies, model outputs copied once out of the
// infer request (it is reused as soon as its job is delivered), gathered
// shards copied once into their stacked tensor.
// The first failing node fails the request: nothing new starts, nodes already
// running finish, then the error reaches the job's sink and every tensor of
// the request is released.
//
// Ownership: a request holds the graph it started on (and through it the
// models and libraries) until its sink has it. Threading: submit() on any
// thread; node completions arrive on OpenVINO callback threads, WorkerPool
// threads or the submitting thread (inline model runs) and carry the request
// on from there: a custom node made ready there whose runs are short
// (measured mean <= kContinueMaxNs) runs on that thread instead of waiting
// for a worker (after the model's infer request has started its next job:
// after_completion) — one per completion, the others go to workers — and
// model jobs launched together never run inline one after another (see
// NoInlineRuns). The destructor waits for the requests in flight.
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "ovfast/dag/dag_spec.hpp"
#include "ovfast/metrics.hpp"
#include "ovfast/sched/scheduler.hpp"

namespace ovfast {

class DagScheduler final : public Scheduler {
 public:
  // `metrics`: the pipeline's own (its Servable's); outlives this scheduler.
  DagScheduler(std::shared_ptr<const DagGraph> graph, ServableMetrics& metrics);
  ~DagScheduler() override;

  // Checks the request against the pipeline's inputs (names, precision,
  // shape, size; encoded images for an image input are checked as they are
  // decoded, DagGraph::image_inputs) and its requested outputs, and puts the
  // inputs in pipeline order.
  Status prepare(InferJob& job) override;
  Status submit(std::unique_ptr<InferJob>& job) override;
  int queued() override { return 0; }
  int active() const override { return active_.load(std::memory_order_relaxed); }
  void drain() override;
  void flush() override {}

  const DagGraph& graph() const { return *graph_; }

  // A custom node whose mean run is at most this continues on the thread that
  // made it ready (a thread hop costs far more on a busy machine); a slower one
  // goes to a worker, so no library holds a model's callback thread for long.
  static constexpr uint64_t kContinueMaxNs = 2'000'000;

 private:
  friend class DagRun;
  // A request finished (its sink has it). The last touch of `this` by a request.
  void finished();
  // Running mean of a custom node's execute() (0: not run yet) and whether it is short.
  void custom_ran(int node, uint64_t ns);
  bool custom_short(int node) const;

  std::shared_ptr<const DagGraph> graph_;
  ServableMetrics& metrics_;
  std::unique_ptr<std::atomic<uint64_t>[]> custom_mean_ns_;  // per node
  std::atomic<int> active_{0};
  std::mutex mu_;
  std::condition_variable idle_cv_;
};

}  // namespace ovfast

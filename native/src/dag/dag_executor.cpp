#include "ovfast/dag/dag_executor.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "dag_data.hpp"
#include "ovfast/exec/result_sink.hpp"
#include "ovfast/exec/worker_pool.hpp"
#include "ovfast/sched/pool_scheduler.hpp"
#include "ovfast/servable.hpp"

namespace ovfast {
namespace {
// Set while this thread carries a request on from a node that finished here (a model node's completion,
// a custom node on a worker): a short custom node made ready here may run here (DagRun::done).
thread_local bool continuing = false;

struct Continuing {
  bool was = continuing;
  Continuing() { continuing = true; }
  ~Continuing() { continuing = was; }
};
}  // namespace

using dag::DagData;
using Session = std::vector<int32_t>;  // shard index at each demultiplexing level, outermost first
using Outputs = std::map<std::string, DagData>;

// Inputs of one node execution as they arrive.
struct PendingNode {
  std::vector<std::optional<DagData>> inputs;  // per connection (a node that does not gather)
  std::vector<std::vector<DagData>> shards;    // per connection, per sub-request (a gathering node)
  size_t missing = 0;
};

struct ReadyNode {
  int node;
  Session session;
  PendingNode in;
};

// One request through the graph. Shared by every node execution in flight.
class DagRun : public std::enable_shared_from_this<DagRun> {
 public:
  DagRun(DagScheduler& sched, std::unique_ptr<InferJob> job)
      : sched_(sched), graph_(sched.graph_), job_(std::move(job)) {}

  void start() {
    if (!dag::has_images(*job_, graph_->image_inputs())) return begin();
    // Encoded images are decoded once, off the submitting thread, for every node they feed.
    WorkerPool::shared().post([self = shared_from_this()] {
      Status st = dag::decode_images(*self->job_, self->graph_->image_inputs(), self->graph_->spec().inputs_info);
      if (st.is_ok()) return self->begin();
      {
        std::lock_guard<std::mutex> lock(self->mu_);
        self->error_ = std::move(st);
      }
      self->complete();  // no node ran
    });
  }

  void begin() {
    Outputs entry;
    for (const InputTensor& in : job_->inputs) entry[in.name] = dag::from_request(in);
    outstanding_ = 1;
    done(kEntryNode, {}, std::move(entry));
  }

  // A node finished with `outs`: its data moves on; ready nodes start.
  void done(int node, const Session& session, Outputs outs) {
    std::vector<ReadyNode> ready;
    bool last, here = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.is_ok()) {
        Status st = route_locked(node, session, outs, &ready);
        if (!st.is_ok()) fail_locked(std::move(st), &ready);
      }
      outstanding_ += static_cast<int>(ready.size());
      last = --outstanding_ == 0;
    }
    // NOTE: launched outside mu_ (outstanding_ keeps the run, and graph_, until the last launch). A short
    // custom node continues on this thread, launched last; every launch with others after it starts no
    // inline model run, which would hold the rest up for a whole inference.
    if (continuing && ready.size() > 0) {
      for (size_t i = ready.size(); i-- > 0;) {
        if (!graph_->node(ready[i].node).custom || !sched_.custom_short(ready[i].node)) continue;
        std::rotate(ready.begin() + static_cast<long>(i), ready.begin() + static_cast<long>(i) + 1, ready.end());
        here = true;
        break;
      }
    }
    for (size_t i = 0; i < ready.size(); ++i) {
      if (i + 1 < ready.size()) {
        NoInlineRuns bar;
        launch(std::move(ready[i]), false);
        continue;
      }
      if (!here) {
        launch(std::move(ready[i]), false);
        break;
      }
      // On a model's completion: once its infer request has started the next queued job.
      std::function<void()> work = [self = shared_from_this(), r = std::move(ready[i])]() mutable {
        Continuing still;
        self->launch(std::move(r), true);
      };
      if (!after_completion(work)) work();
    }
    if (last) complete();
  }

  void failed(int node, Status st) {
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.is_ok()) {
        const std::string& name = graph_->node(node).name;
        error_ = Status(st.code(), st.message().rfind("Pipeline", 0) == 0 || name.empty()
                                       ? st.message() : "Node " + name + ": " + st.message());
      }
      failed_.store(true, std::memory_order_relaxed);
      last = --outstanding_ == 0;
    }
    if (last) complete();
  }

 private:
  // A model node's job in flight (InferJob::context): its inputs view `keep`.
  struct NodeCall {
    std::shared_ptr<DagRun> run;
    int node;
    Session session;
    std::vector<DagData> keep;
  };
  friend class DagNodeSink;

  void fail_locked(Status st, std::vector<ReadyNode>* ready) {
    error_ = std::move(st);
    failed_.store(true, std::memory_order_relaxed);
    ready->clear();
  }

  Status route_locked(int node, const Session& session, Outputs& outs, std::vector<ReadyNode>* ready) {
    const DagNodeSpec& spec = graph_->node(node);
    // Every output something reads must be there, whatever the node is.
    auto need = [&](const std::string& name) -> Status {
      if (outs.count(name)) return Status::ok();
      return internal_error("Pipeline " + graph_->spec().name + ": node " + (node ? spec.name : "request") +
                            " produced no output " + name);
    };
    std::set<std::string> used;
    for (const auto& [dst, k] : graph_->consumers(node)) used.insert(graph_->node(dst).inputs[k].src_output);
    for (size_t o : graph_->outputs_of(node)) used.insert(graph_->spec().outputs[o].src_output);
    for (const std::string& name : used) OVF_RETURN_IF_ERROR(need(name));
    if (!spec.demultiplex) return deliver_locked(node, session, outs, ready);
    // Demultiplexing: every output read further on split along dim 0, one sub-request per row.
    for (auto it = outs.begin(); it != outs.end();) it = used.count(it->first) ? std::next(it) : outs.erase(it);
    int64_t n = -1;
    for (const auto& [name, d] : outs) {
      if (d.raw || d.shape.empty())
        return invalid_argument("Pipeline " + graph_->spec().name + ": output " + name + " of " +
                                (node ? spec.name : "request") + " cannot be demultiplexed (no first dimension)");
      const auto rows = static_cast<int64_t>(d.shape[0]);
      if (n >= 0 && rows != n)
        return invalid_argument("Pipeline " + graph_->spec().name + ": outputs of " + spec.name +
                                " differ in their first dimension, cannot demultiply");
      n = rows;
    }
    if (spec.demultiply_count > 0 && n != spec.demultiply_count)
      return invalid_argument("Wrong dimension size to demultiply - Expected: " + std::to_string(spec.demultiply_count) +
                              "; Actual: " + std::to_string(n) + "; node: " + (node ? spec.name : "request"));
    if (n == 0) return {StatusCode::ABORTED, "Pipeline execution aborted due to no content from custom node"};
    if (n > kMaxDemultiply)
      return invalid_argument("Too large dimension size to demultiply - maximum " + std::to_string(kMaxDemultiply) +
                              "; Actual: " + std::to_string(n));
    shard_counts_[{node, session}] = n;
    for (int64_t i = 0; i < n; ++i) {
      Session sub = session;
      sub.push_back(static_cast<int32_t>(i));
      Outputs part;
      for (const auto& [name, d] : outs) part[name] = dag::shard(d, static_cast<size_t>(i));
      OVF_RETURN_IF_ERROR(deliver_locked(node, sub, part, ready));
    }
    return Status::ok();
  }

  // Hands a node's data (at `session`) to its consumers and to the response.
  Status deliver_locked(int node, const Session& session, Outputs& outs, std::vector<ReadyNode>* ready) {
    for (const auto& [dst, k] : graph_->consumers(node)) {
      const DagNodeSpec& d = graph_->node(dst);
      DagData data = outs.at(d.inputs[k].src_output);
      const bool gathers = d.gather_from >= 0;
      Session at = session;
      if (gathers) at.pop_back();
      auto key = std::make_pair(dst, at);
      auto it = pending_.find(key);
      if (it == pending_.end()) {
        PendingNode p;
        if (gathers) {
          auto c = shard_counts_.find({d.gather_from, at});
          if (c == shard_counts_.end()) return internal_error("Pipeline: gathering before its demultiplexer ran");
          p.shards.assign(d.inputs.size(), std::vector<DagData>(static_cast<size_t>(c->second)));
          p.missing = d.inputs.size() * static_cast<size_t>(c->second);
        } else {
          p.inputs.resize(d.inputs.size());
          p.missing = d.inputs.size();
        }
        it = pending_.emplace(key, std::move(p)).first;
      }
      PendingNode& p = it->second;
      if (gathers) p.shards[k][static_cast<size_t>(session.back())] = std::move(data);
      else p.inputs[k] = std::move(data);
      if (--p.missing == 0) {
        ready->push_back({dst, at, std::move(p)});
        pending_.erase(it);
      }
    }
    for (size_t o : graph_->outputs_of(node)) response_[{o, session}] = outs.at(graph_->spec().outputs[o].src_output);
    return Status::ok();
  }

  // `here`: a custom node runs on this thread (else on a worker).
  void launch(ReadyNode r, bool here) {
    if (failed_.load(std::memory_order_relaxed)) {
      failed(r.node, Status(StatusCode::CANCELLED, "not run"));  // the first error is kept
      return;
    }
    const DagNodeSpec& spec = graph_->node(r.node);
    std::vector<DagData> in(spec.inputs.size());
    for (size_t k = 0; k < spec.inputs.size(); ++k) {
      if (spec.gather_from < 0) {
        in[k] = std::move(*r.in.inputs[k]);
        continue;
      }
      Status st = dag::stack(r.in.shards[k], spec.name + " input " + spec.inputs[k].dst_input, &in[k]);
      if (!st.is_ok()) return failed(r.node, st);
    }
    if (spec.model) run_model(r.node, std::move(r.session), std::move(in));
    else run_custom(r.node, std::move(r.session), std::move(in), here);
  }

  void run_model(int node, Session session, std::vector<DagData> in);
  void run_custom(int node, Session session, std::vector<DagData> in, bool here);
  void complete();
  Status assemble(size_t output, Session& prefix, DagData* out);

  DagScheduler& sched_;
  // Released by complete(), before the scheduler hears of it: whatever still holds this run (a node
  // call unwinding on an OpenVINO thread) must not be the last owner of a model or library.
  std::shared_ptr<const DagGraph> graph_;
  std::unique_ptr<InferJob> job_;
  std::atomic<bool> failed_{false};
  std::mutex mu_;
  // All below guarded by mu_.
  int outstanding_ = 0;  // node executions started (or about to be) and not finished
  Status error_;
  std::map<std::pair<int, Session>, PendingNode> pending_;
  std::map<std::pair<int, Session>, int64_t> shard_counts_;  // (demultiplexer, its session) -> sub-requests
  std::map<std::pair<size_t, Session>, DagData> response_;   // (pipeline output, session) -> data
};

// Where a model node's job ends: the node's outputs move on through its request.
class DagNodeSink final : public ResultSink {
 public:
  void deliver(InferJob& job, Status status, std::vector<OutputTensor>& outputs, const JobTiming&) override {
    std::unique_ptr<DagRun::NodeCall> call(static_cast<DagRun::NodeCall*>(job.context));
    job.context = nullptr;
    call->keep.clear();  // the run is over: its inputs may go
    Continuing here;
    if (!status.is_ok()) return call->run->failed(call->node, std::move(status));
    Outputs outs;
    for (OutputTensor& o : outputs) {
      // NOTE: the infer request's buffers are reused once this returns: the one copy of a model output.
      Status st = dag::copy_out(o.tensor, o.name, &outs[o.name]);
      if (!st.is_ok()) return call->run->failed(call->node, std::move(st));
    }
    call->run->done(call->node, call->session, std::move(outs));
  }
};

namespace {
const std::shared_ptr<ResultSink>& node_sink() {
  static const std::shared_ptr<ResultSink> sink = std::make_shared<DagNodeSink>();
  return sink;
}
}  // namespace

void DagRun::run_model(int node, Session session, std::vector<DagData> in) {
  const DagNodeSpec& spec = graph_->node(node);
  auto job = std::make_unique<InferJob>();
  job->model_name = spec.name;
  for (size_t k = 0; k < in.size(); ++k) job->inputs.push_back(dag::as_input(in[k], spec.inputs[k].dst_input));
  job->sink = node_sink();
  job->cancelled = job_->cancelled;  // the client's flag outlives every node job (the request completes last)
  job->deadline_ns = job_->deadline_ns;
  job->metrics_route = node_route(job_->metrics_route);  // the model counts its pipeline traffic (OVMS)
  // NOTE: the job's inputs view `in`'s tensors, which move (their memory does not) into the call.
  auto* call = new NodeCall{shared_from_this(), node, std::move(session), std::move(in)};
  job->context = call;
  const std::shared_ptr<Servable> model = spec.model;  // alive through submit, whatever completes meanwhile
  Status st = model->submit(std::move(job));
  if (!st.is_ok()) {
    delete call;  // on error the job never reached the sink
    failed(node, std::move(st));
  }
}

void DagRun::run_custom(int node, Session session, std::vector<DagData> in, bool here) {
  auto self = shared_from_this();
  auto body = [self, node, session = std::move(session), in = std::move(in)]() mutable {
    const DagNodeSpec& spec = self->graph_->node(node);
    std::vector<std::pair<std::string, ov::Tensor>> args;
    for (size_t k = 0; k < in.size(); ++k) {
      if (in[k].raw)
        return self->failed(node, invalid_argument("Pipeline: custom node " + spec.name +
                                                   " cannot take encoded images (input " +
                                                   spec.inputs[k].dst_input + ")"));
      args.emplace_back(spec.inputs[k].dst_input, in[k].view());
    }
    std::map<std::string, NodeTensor> produced;
    const uint64_t t0 = now_ns();
    Status st = spec.custom->execute(args, &produced);
    self->sched_.custom_ran(node, now_ns() - t0);
    args.clear();
    in.clear();  // before the run may complete: nothing of it outlives it here
    if (!st.is_ok()) return self->failed(node, std::move(st));
    Outputs outs;
    for (auto& [name, t] : produced) {
      DagData& d = outs[name];
      d.type = t.tensor.get_element_type();
      d.shape = t.tensor.get_shape();
      d.data = static_cast<uint8_t*>(t.tensor.data());
      d.bytes = t.tensor.get_byte_size();
      d.owner = std::move(t.owner);
    }
    produced.clear();  // the tensor objects go on this thread; the library's memory stays with `owner`
    self->done(node, session, std::move(outs));
  };
  if (here) return body();
  WorkerPool::shared().post([body = std::move(body)]() mutable {
    Continuing on_worker;
    body();
  });
}

Status DagRun::assemble(size_t output, Session& prefix, DagData* out) {
  const std::vector<int>& levels = graph_->output_levels(output);
  if (prefix.size() == levels.size()) {
    auto it = response_.find({output, prefix});
    if (it == response_.end()) return internal_error("Pipeline: an output never arrived");
    *out = it->second;
    return Status::ok();
  }
  auto c = shard_counts_.find({levels[prefix.size()], prefix});
  if (c == shard_counts_.end()) return internal_error("Pipeline: an output's demultiplexer never ran");
  std::vector<DagData> parts(static_cast<size_t>(c->second));
  for (int32_t i = 0; i < static_cast<int32_t>(c->second); ++i) {
    prefix.push_back(i);
    Status st = assemble(output, prefix, &parts[static_cast<size_t>(i)]);
    prefix.pop_back();
    OVF_RETURN_IF_ERROR(st);
  }
  return dag::stack(parts, "output " + graph_->spec().outputs[output].name, out);
}

void DagRun::complete() {
  // NOTE: no node runs any more: the state below is read without mu_.
  Status st = error_;
  std::vector<OutputTensor> outputs;
  std::vector<std::shared_ptr<void>> keep;  // what the outputs view, until the sink has them
  const DagSpec& spec = graph_->spec();
  for (size_t o = 0; st.is_ok() && o < spec.outputs.size(); ++o) {
    const std::string& name = spec.outputs[o].name;
    if (!job_->requested_outputs.empty() &&
        std::find(job_->requested_outputs.begin(), job_->requested_outputs.end(), name) == job_->requested_outputs.end())
      continue;
    Session prefix;
    DagData d;
    st = assemble(o, prefix, &d);
    if (st.is_ok() && d.raw) st = {StatusCode::UNSUPPORTED, "Pipeline: output " + name + " is an encoded input"};
    if (!st.is_ok()) break;
    OutputTensor t;
    t.name = name;
    t.dtype = datatype_from_element(d.type);
    for (size_t x : d.shape) t.shape.push_back(static_cast<int64_t>(x));
    t.tensor = d.view();  // made here, dropped here after the sink
    outputs.push_back(std::move(t));
    keep.push_back(std::move(d.owner));
  }
  if (!st.is_ok()) outputs.clear();
  sched_.metrics_.job_done(job_->metrics_route, job_->received_ns, st.is_ok(), false, 0, 0, 1);
  if (st.is_ok()) sched_.metrics_.execution_done();
  job_->sink->deliver(*job_, std::move(st), outputs, {});
  DagScheduler& sched = sched_;
  // The tensors of the request go with it (custom-node memory back to its library).
  pending_.clear();
  response_.clear();
  outputs.clear();
  keep.clear();
  shard_counts_.clear();
  job_.reset();
  graph_.reset();
  sched.finished();
}

DagScheduler::DagScheduler(std::shared_ptr<const DagGraph> graph, ServableMetrics& metrics)
    : graph_(std::move(graph)),
      metrics_(metrics),
      custom_mean_ns_(new std::atomic<uint64_t>[static_cast<size_t>(graph_->size())]) {
  for (int i = 0; i < graph_->size(); ++i) custom_mean_ns_[static_cast<size_t>(i)].store(0, std::memory_order_relaxed);
}

void DagScheduler::custom_ran(int node, uint64_t ns) {
  // a running mean over about the last 8 runs (a benign race between runs: it is a hint)
  std::atomic<uint64_t>& mean = custom_mean_ns_[static_cast<size_t>(node)];
  const uint64_t avg = mean.load(std::memory_order_relaxed);
  ns = std::max<uint64_t>(ns, 1);
  mean.store(avg == 0 ? ns : (avg * 7 + ns) / 8, std::memory_order_relaxed);
}

bool DagScheduler::custom_short(int node) const {
  const uint64_t avg = custom_mean_ns_[static_cast<size_t>(node)].load(std::memory_order_relaxed);
  return avg != 0 && avg <= kContinueMaxNs;
}

DagScheduler::~DagScheduler() { drain(); }

Status DagScheduler::prepare(InferJob& job) {
  const std::vector<TensorInfo>& infos = graph_->spec().inputs_info;
  if (job.inputs.size() != infos.size())
    return invalid_argument("Invalid number of inputs - Expected: " + std::to_string(infos.size()) +
                            "; Actual: " + std::to_string(job.inputs.size()));
  std::vector<InputTensor> ordered;
  ordered.reserve(infos.size());
  for (const TensorInfo& info : infos) {
    auto it = std::find_if(job.inputs.begin(), job.inputs.end(), [&](const InputTensor& t) { return t.name == info.name; });
    if (it == job.inputs.end()) return invalid_argument("Missing input with specific name - Required input: " + info.name);
    // Encoded images for an image input are checked as they are decoded (DagRun::start).
    const auto& images = graph_->image_inputs();
    const size_t index = ordered.size();
    const bool encoded = it->dtype == DataType::BYTES &&
                         std::any_of(images.begin(), images.end(), [&](const DagImageInput& p) { return p.input == index; });
    if (!encoded) OVF_RETURN_IF_ERROR(validate_input(*it, info));
    ordered.push_back(std::move(*it));
  }
  job.inputs.swap(ordered);
  const auto& outs = graph_->spec().outputs;
  for (size_t k = 0; k < job.requested_outputs.size(); ++k) {
    const std::string& name = job.requested_outputs[k];
    if (std::none_of(outs.begin(), outs.end(), [&](const DagOutputSpec& o) { return o.name == name; }))
      return invalid_argument("Invalid output name - the pipeline has no output named: " + name);
    for (size_t j = 0; j < k; ++j)
      if (job.requested_outputs[j] == name)
        return invalid_argument("Invalid outputs - output '" + name + "' is requested more than once");
  }
  return Status::ok();
}

Status DagScheduler::submit(std::unique_ptr<InferJob>& job) {
  if (Status st = job->unwanted(now_ns()); !st.is_ok()) return st;
  active_.fetch_add(1, std::memory_order_relaxed);
  auto run = std::make_shared<DagRun>(*this, std::move(job));
  run->start();
  return Status::ok();
}

void DagScheduler::finished() {
  std::lock_guard<std::mutex> lock(mu_);
  if (active_.fetch_sub(1, std::memory_order_relaxed) == 1) idle_cv_.notify_all();
}

void DagScheduler::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return active_.load(std::memory_order_relaxed) == 0; });
}

}  // namespace ovfast

#include "ovfast/sched/sequence.hpp"

#include <cstring>

namespace ovfast {
namespace {

namespace msg = sequence_messages;

constexpr const char* kIdInput = "sequence_id";
constexpr const char* kControlInput = "sequence_control_input";
constexpr uint64_t kStart = 1, kEnd = 2;  // sequence_control_input values (0: none)

// One special input: shape [1], one value in its typed field (uint64_val /
// uint32_val). Checked in OVMS's order, with its messages.
Status special_value(const InputTensor& in, DataType want, const char* bad_type, uint64_t* out) {
  const std::string detail = std::string(" - Required shape for ") + in.name + " is: (1)";
  if (!in.has_shape) return invalid_argument(msg::kNoShape);
  if (in.shape.size() != 1) return invalid_argument("Invalid number of shape dimensions" + detail);
  if (in.shape[0] != 1) return invalid_argument("Invalid input shape" + detail);
  if (in.dtype != want || !in.has_typed_contents || in.typed_count != 1 || !in.data) return invalid_argument(bad_type);
  if (want == DataType::UINT64) {
    std::memcpy(out, in.data, sizeof(uint64_t));
  } else {
    uint32_t v;
    std::memcpy(&v, in.data, sizeof(v));
    *out = v;
  }
  return Status::ok();
}

}  // namespace

SequenceScheduler::SequenceScheduler(ModelInstance& model, ServableMetrics& metrics, std::shared_ptr<Clock> clock,
                                     SequenceOptions opts)
    : PoolScheduler(model, metrics, std::move(clock), false), opts_(opts) {
  // NOTE: a sequence's state is restored and saved around each run; runs stay on OpenVINO's
  // threads (start_async), where the sequence tests and the state hooks expect them.
  allow_inline_ = false;
}

SequenceScheduler::~SequenceScheduler() {
  // NOTE: before the members go: runs in flight still call the hooks, which use them.
  drain();
}

Status SequenceScheduler::prepare(InferJob& job) {
  SequenceRequest& seq = job.sequence;
  const InputTensor* id_in = nullptr;
  const InputTensor* control_in = nullptr;
  for (const InputTensor& in : job.inputs) {
    if (in.name == kIdInput) id_in = &in;
    else if (in.name == kControlInput) control_in = &in;
  }
  if (id_in) {
    OVF_RETURN_IF_ERROR(special_value(*id_in, DataType::UINT64, msg::kIdBadType, &seq.id));
    seq.id_string.clear();
  }
  if (control_in) {
    uint64_t control = 0;
    OVF_RETURN_IF_ERROR(special_value(*control_in, DataType::UINT32, msg::kControlBadType, &control));
    if (control > kEnd) return invalid_argument(msg::kBadControl);
    seq.start = control == kStart;
    seq.end = control == kEnd;
  }
  if (id_in || control_in) {
    // The special inputs are not the model's: take them out before validation.
    std::vector<InputTensor> kept;
    kept.reserve(job.inputs.size());
    for (InputTensor& in : job.inputs)
      if (in.name != kIdInput && in.name != kControlInput) kept.push_back(std::move(in));
    job.inputs = std::move(kept);
  }
  if (!seq.start && seq.id == 0 && seq.id_string.empty()) return invalid_argument(msg::kIdNotProvided);
  return Status::ok();
}

SequenceScheduler::Sequence* SequenceScheduler::find_locked(const SequenceRequest& seq) {
  auto it = sequences_.find(key_of(seq));
  return it == sequences_.end() ? nullptr : &it->second;
}

Status SequenceScheduler::admit_locked(SequenceRequest& seq) {
  if (!seq.start) {
    Sequence* s = find_locked(seq);
    if (!s) return {StatusCode::NOT_FOUND, msg::kMissing};
    if (s->ending) return {StatusCode::FAILED_PRECONDITION, msg::kTerminated};
    ++s->pending;
    s->idle = false;
    s->ending = seq.end;
    return Status::ok();
  }
  if (sequences_.size() >= opts_.max_sequence_number) return {StatusCode::UNAVAILABLE, msg::kMaxReached};
  if (seq.id == 0 && seq.id_string.empty()) {
    // A server-assigned id: the next one no live sequence has.
    while (next_id_ == 0 || sequences_.count(Key{next_id_, {}})) ++next_id_;
    seq.id = next_id_++;
  } else if (Sequence* s = find_locked(seq)) {
    if (s->ending) return {StatusCode::FAILED_PRECONDITION, msg::kTerminated};
    return {StatusCode::ALREADY_EXISTS, msg::kAlreadyExists};
  }
  Sequence& s = sequences_[key_of(seq)];
  s.pending = 1;
  s.ending = seq.end;
  return Status::ok();
}

Status SequenceScheduler::submit(std::unique_ptr<InferJob>& job) {
  SequenceRequest& seq = job->sequence;
  {
    std::lock_guard<std::mutex> lock(seq_mu_);
    OVF_RETURN_IF_ERROR(admit_locked(seq));
  }
  Status st = PoolScheduler::submit(job);
  if (!st.is_ok()) {
    // Unloading: the job never ran, so it leaves no trace in its sequence.
    std::lock_guard<std::mutex> lock(seq_mu_);
    if (Sequence* s = find_locked(seq)) {
      if (--s->pending == 0 && seq.start) {
        state_bytes_ -= s->state_bytes;
        sequences_.erase(key_of(seq));
      } else if (seq.end) {
        s->ending = false;
      }
    }
  }
  return st;
}

bool SequenceScheduler::plan_locked(uint64_t, std::vector<size_t>* take, uint64_t*) {
  std::lock_guard<std::mutex> lock(seq_mu_);
  // The oldest job whose sequence is not running: a sequence's jobs keep their order.
  for (size_t i = 0; i < pending_.size(); ++i) {
    Sequence* s = find_locked(pending_[i].job->sequence);
    if (s && s->running) continue;
    if (s) s->running = true;
    take->assign(1, i);
    return true;
  }
  return false;
}

void SequenceScheduler::before_run(ov::InferRequest& request, std::vector<QueuedJob>& jobs) {
  Sequence* s;
  {
    std::lock_guard<std::mutex> lock(seq_mu_);
    s = find_locked(jobs.front().job->sequence);
  }
  if (!s) throw std::runtime_error("the job's sequence is gone");
  // NOTE: s->state is touched only by the one running job of its sequence
  // (running is set under the locks), and a running sequence is never
  // removed by anyone else, so no lock is needed from here.
  std::vector<ov::VariableState> states = request.query_state();
  if (s->state.empty()) {
    for (ov::VariableState& v : states) v.reset();
    return;
  }
  if (states.size() != s->state.size()) throw std::runtime_error("the model's state variables changed");
  for (size_t i = 0; i < states.size(); ++i) states[i].set_state(s->state[i]);
}

void SequenceScheduler::after_run(ov::InferRequest& request, std::vector<QueuedJob>& jobs, Status& status) {
  const SequenceRequest& seq = jobs.front().job->sequence;
  Sequence* s;
  {
    std::lock_guard<std::mutex> lock(seq_mu_);
    s = find_locked(seq);
  }
  if (!s) return;
  int64_t grown = 0;
  if (status.is_ok() && !seq.end) {
    try {
      std::vector<ov::VariableState> states = request.query_state();
      s->state.resize(states.size());
      for (size_t i = 0; i < states.size(); ++i) {
        ov::Tensor now = states[i].get_state();
        ov::Tensor& saved = s->state[i];
        if (!saved || saved.get_element_type() != now.get_element_type() || saved.get_shape() != now.get_shape()) {
          grown -= saved ? static_cast<int64_t>(saved.get_byte_size()) : 0;
          saved = ov::Tensor(now.get_element_type(), now.get_shape());
          grown += static_cast<int64_t>(saved.get_byte_size());
        }
        now.copy_to(saved);
      }
    } catch (const std::exception& e) {
      status = internal_error(std::string("Internal server error - cannot save the sequence state: ") + e.what());
    }
  }
  std::lock_guard<std::mutex> lock(seq_mu_);
  s->state_bytes = static_cast<uint64_t>(static_cast<int64_t>(s->state_bytes) + grown);
  state_bytes_ = static_cast<uint64_t>(static_cast<int64_t>(state_bytes_) + grown);
  s->running = false;
  --s->pending;
  if (seq.end) {
    state_bytes_ -= s->state_bytes;
    sequences_.erase(key_of(seq));
  }
}

void SequenceScheduler::add_outputs(const InferJob& job, std::vector<OutputTensor>& outputs) {
  OutputTensor o;
  o.name = kIdInput;
  o.shape = {1};
  o.sequence_id = true;
  if (!job.sequence.id_string.empty()) {
    o.dtype = DataType::BYTES;
    o.tensor = ov::Tensor(ov::element::string, ov::Shape{1});
    o.tensor.data<std::string>()[0] = job.sequence.id_string;
  } else {
    o.dtype = DataType::UINT64;
    o.tensor = ov::Tensor(ov::element::u64, ov::Shape{1});
    o.tensor.data<uint64_t>()[0] = job.sequence.id;
  }
  outputs.push_back(std::move(o));
}

size_t SequenceScheduler::sweep_idle() {
  std::lock_guard<std::mutex> lock(seq_mu_);
  size_t removed = 0;
  for (auto it = sequences_.begin(); it != sequences_.end();) {
    Sequence& s = it->second;
    if (s.pending > 0 || s.ending) {
      ++it;
    } else if (s.idle) {
      state_bytes_ -= s.state_bytes;
      it = sequences_.erase(it);
      ++removed;
    } else {
      s.idle = true;
      ++it;
    }
  }
  return removed;
}

SequenceStats SequenceScheduler::stats() {
  std::lock_guard<std::mutex> lock(seq_mu_);
  return {static_cast<uint64_t>(sequences_.size()), state_bytes_};
}

}  // namespace ovfast

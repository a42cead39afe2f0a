// SequenceScheduler: runs a stateful model's jobs as sequences (OVMS
// stateful models, Triton's sequence API). A sequence's state variables
// (ReadValue/Assign) live here between its requests: before a job runs they
// are restored into the infer request it got (VariableState::set_state, or
// reset() for a sequence's first job) and after it ran they are saved back
// (get_state, copied), so any infer request can serve any sequence.
//
// Semantics (spec/ovms.md §5): prepare() takes the TFS special inputs
// `sequence_id` / `sequence_control_input` out of the job (KServe jobs carry
// InferJob::sequence from their request parameters); submit() checks the
// job against the live sequences (start: new id or a server-assigned one,
// `max_sequence_number`; otherwise the sequence must exist and not be
// ending — OVMS's SEQUENCE_TERMINATED) before queuing it. The jobs of one sequence run one at a time, in
// the order they were submitted; sequences never share state. A job that
// ends its sequence removes it once it ran. sweep_idle() is one pass of the
// idle-sequence cleaner.
//
// Ownership: owns the sequences and their saved state. Locking: seq_mu_
// guards the sequences; lock order mu_ (PoolScheduler), then seq_mu_.
// Threads: as PoolScheduler; every public method may be called from any thread.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ovfast/sched/pool_scheduler.hpp"

namespace ovfast {

struct SequenceOptions {
  uint32_t max_sequence_number = 500;
};

struct SequenceStats {
  uint64_t sequences = 0;    // live sequences (ending ones included)
  uint64_t state_bytes = 0;  // bytes of saved state, all sequences together
};

// OVMS's messages for sequence errors (src/ovfast/errors.py holds the same texts).
namespace sequence_messages {
inline constexpr const char* kMissing = "Sequence with provided ID does not exist";
inline constexpr const char* kAlreadyExists = "Sequence with provided ID already exists";
inline constexpr const char* kIdNotProvided = "Sequence ID has not been provided in request inputs";
inline constexpr const char* kBadControl = "Unexpected value of sequence control input";
inline constexpr const char* kIdBadType = "Could not find sequence id in expected tensor proto field uint64_val";
inline constexpr const char* kControlBadType =
    "Could not find sequence control input in expected tensor proto field uint32_val";
inline constexpr const char* kTerminated = "Sequence last request is being processed and it's not available anymore";
inline constexpr const char* kNoShape = "Special input proto does not contain tensor shape information";
inline constexpr const char* kMaxReached = "Max sequence number has been reached. Could not create new sequence.";
}  // namespace sequence_messages

class SequenceScheduler final : public PoolScheduler {
 public:
  SequenceScheduler(ModelInstance& model, ServableMetrics& metrics, std::shared_ptr<Clock> clock,
                    SequenceOptions opts);
  ~SequenceScheduler() override;

  Status prepare(InferJob& job) override;
  // Errors (the job stays the caller's): the sequence errors above, with
  // their OVMS status codes (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
  // UNAVAILABLE); UNAVAILABLE while unloading.
  Status submit(std::unique_ptr<InferJob>& job) override;

  // One pass of the idle cleaner: removes the sequences flagged idle by the
  // previous pass, flags the others; a request clears the flag. Sequences
  // with jobs queued or running, and ending ones, are left alone. Returns
  // how many were removed.
  size_t sweep_idle();
  SequenceStats stats();

 protected:
  bool plan_locked(uint64_t now_ns, std::vector<size_t>* take, uint64_t* deadline_ns) override;
  void before_run(ov::InferRequest& request, std::vector<QueuedJob>& jobs) override;
  void after_run(ov::InferRequest& request, std::vector<QueuedJob>& jobs, Status& status) override;
  void add_outputs(const InferJob& job, std::vector<OutputTensor>& outputs) override;

 private:
  // A numeric id, or (KServe) a string id.
  struct Key {
    uint64_t id = 0;
    std::string name;
    bool operator<(const Key& o) const { return id != o.id ? id < o.id : name < o.name; }
  };
  struct Sequence {
    std::vector<ov::Tensor> state;  // saved state, in query_state() order; empty: reset before the next run
    uint64_t state_bytes = 0;
    int pending = 0;                // jobs submitted and not yet finished
    bool running = false;           // one of its jobs holds an infer request
    bool ending = false;            // its end was submitted (OVMS "terminated")
    bool idle = false;              // flagged by the last cleaner pass
  };
  static Key key_of(const SequenceRequest& s) { return {s.id_string.empty() ? s.id : 0, s.id_string}; }
  // Registers the job with its sequence (creating it on start). Needs seq_mu_.
  Status admit_locked(SequenceRequest& seq);
  Sequence* find_locked(const SequenceRequest& seq);

  const SequenceOptions opts_;
  std::mutex seq_mu_;
  std::map<Key, Sequence> sequences_;  // guarded by seq_mu_
  uint64_t next_id_ = 1;               // guarded by seq_mu_: server-assigned ids
  uint64_t state_bytes_ = 0;           // guarded by seq_mu_
};

}  // namespace ovfast

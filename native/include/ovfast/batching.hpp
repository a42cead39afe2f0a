// Dynamic batching: which queued requests go into the next inference, and
// how their rows are gathered into one batch tensor and scattered back.
//
// Threading: pure functions over the caller's data; the caller (DynamicBatcher)
// holds the lock that guards its queue. Ownership: nothing is kept.
//
// Policy (Triton's dynamic batcher, see docs/config.md "dynamic_batching"):
// the batch grows from the oldest queued request, in arrival order, with the
// requests whose non-batch dimensions match it, up to max_batch_size rows.
// It is dispatched at once when a prefix of it (in arrival order) reaches a
// preferred size, or when it reaches max_batch_size, or when
// max_queue_delay_us is 0; otherwise when the oldest request has waited
// max_queue_delay_us. Whenever it goes, it is cut at the largest prefix of a
// preferred size if there is one (as Triton does: the rest waits for the next
// batch), else everything collected goes. A request that
// cannot share a batch (its inputs disagree on dim 0, it has no rows, or
// it has at least max_batch_size rows) runs alone, as soon as an infer
// request is free, ahead of a batch that is still waiting.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include <openvino/runtime/tensor.hpp>

#include "ovfast/request.hpp"

namespace ovfast {

struct BatchingOptions {
  int max_batch_size = 0;          // 0: no batching
  uint64_t max_queue_delay_us = 0;
  std::vector<int> preferred_batch_sizes;  // sorted, each in 1..max_batch_size
  bool enabled() const { return max_batch_size > 0; }
};

struct QueuedJob {
  std::unique_ptr<InferJob> job;
  uint64_t enqueue_ns = 0;
  int64_t rows = 0;        // dim 0 shared by every input; -1: cannot share a batch
};

struct BatchPlan {
  bool dispatch = false;
  std::vector<size_t> take;   // queue indices, ascending (when dispatch)
  uint64_t deadline_ns = 0;   // when to look again (when !dispatch)
};

// The batch dimension of a validated job: dim 0 when every input has rank >= 1
// and the same dim 0, else -1.
int64_t job_rows(const InferJob& job);

// Decides on the queue as it is at `now_ns`. `flush`: dispatch whatever can
// be formed without waiting (unload). The queue must not be empty.
BatchPlan plan_batch(const std::deque<QueuedJob>& queue, const BatchingOptions& opts, uint64_t now_ns, bool flush);

// Copies the rows of every job's input `index` into `dst` (shape [rows, ...]),
// in order: the batch's one copy (BYTES elements are copied from the requests).
void gather_input(const std::vector<QueuedJob*>& jobs, size_t index, ov::Tensor& dst);

// A view of rows [row0, row0 + rows) of a batch output; strings are copied.
// `batch` has rank >= 1 and those rows; otherwise throws std::invalid_argument.
ov::Tensor slice_rows(const ov::Tensor& batch, int64_t row0, int64_t rows);

}  // namespace ovfast

#include "ovfast/batching.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ovfast {
namespace {

// Requests can share a batch when every input agrees on every dimension but the first.
bool same_sample_shape(const InferJob& a, const InferJob& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const Shape& x = a.inputs[i].shape;
    const Shape& y = b.inputs[i].shape;
    if (x.size() != y.size() || !std::equal(x.begin() + 1, x.end(), y.begin() + 1)) return false;
  }
  return true;
}

}  // namespace

int64_t job_rows(const InferJob& job) {
  if (job.inputs.empty()) return -1;
  int64_t rows = -1;
  for (const InputTensor& in : job.inputs) {
    if (in.shape.empty()) return -1;
    if (rows >= 0 && in.shape[0] != rows) return -1;
    rows = in.shape[0];
  }
  return rows;
}

BatchPlan plan_batch(const std::deque<QueuedJob>& queue, const BatchingOptions& opts, uint64_t now_ns, bool flush) {
  BatchPlan plan;
  const QueuedJob& head = queue.front();
  const int64_t max_rows = opts.max_batch_size;
  if (head.rows <= 0 || head.rows >= max_rows) {  // runs alone, now
    plan.dispatch = true;
    plan.take = {0};
    return plan;
  }
  // Grow from the head: compatible requests in arrival order, up to max rows.
  // `prefix_rows[k]` = rows after taking take[0..k]; used to cut at a preferred size.
  std::vector<size_t> take{0};
  std::vector<int64_t> prefix_rows{head.rows};
  int64_t rows = head.rows;
  size_t alone = 0;  // the first later request that cannot share a batch (0: none)
  for (size_t i = 1; i < queue.size() && rows < max_rows; ++i) {
    const QueuedJob& q = queue[i];
    if (q.rows <= 0 || q.rows >= max_rows) {
      if (alone == 0) alone = i;
      continue;
    }
    if (rows + q.rows > max_rows) continue;
    if (!same_sample_shape(*head.job, *q.job)) continue;
    rows += q.rows;
    take.push_back(i);
    prefix_rows.push_back(rows);
  }
  // The largest prefix (in arrival order) whose rows are a preferred size, if any.
  const auto& pref = opts.preferred_batch_sizes;
  size_t cut = take.size();
  bool preferred = false;
  for (size_t k = prefix_rows.size(); k-- > 0 && !preferred;)
    if (std::find(pref.begin(), pref.end(), prefix_rows[k]) != pref.end()) {
      cut = k + 1;
      preferred = true;
    }
  const uint64_t deadline = head.enqueue_ns + opts.max_queue_delay_us * 1000;
  const bool due = flush || opts.max_queue_delay_us == 0 || now_ns >= deadline;
  // NOTE: as in Triton, a preferred size goes as soon as the queue holds it, even when
  // more rows are collected (a full batch too): the rest waits for the next batch.
  if (preferred || rows >= max_rows || due) {
    plan.dispatch = true;
    take.resize(cut);
    plan.take = std::move(take);
    return plan;
  }
  if (alone) {  // gains nothing by waiting: runs now, ahead of the forming batch
    plan.dispatch = true;
    plan.take = {alone};
    return plan;
  }
  plan.deadline_ns = deadline;
  return plan;
}

void gather_input(const std::vector<QueuedJob*>& jobs, size_t index, ov::Tensor& dst) {
  if (dst.get_element_type() == ov::element::string) {
    std::string* out = dst.data<std::string>();
    for (QueuedJob* q : jobs) {
      const BytesElements& e = q->job->inputs[index].bytes;
      e.write_to(out);
      out += e.count();
    }
    return;
  }
  uint8_t* out = static_cast<uint8_t*>(dst.data());
  for (QueuedJob* q : jobs) {
    const InputTensor& in = q->job->inputs[index];
    if (in.size) std::memcpy(out, in.data, in.size);
    out += in.size;
  }
}

ov::Tensor slice_rows(const ov::Tensor& batch, int64_t row0, int64_t rows) {
  ov::Shape shape = batch.get_shape();
  if (shape.empty()) throw std::invalid_argument("slice_rows: a scalar tensor has no rows");
  const size_t total = shape[0];
  if (row0 < 0 || rows < 0 || static_cast<uint64_t>(row0) + static_cast<uint64_t>(rows) > total)
    throw std::invalid_argument("slice_rows: rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) +
                                ") of a batch of " + std::to_string(total));
  const size_t per_row = total ? batch.get_size() / total : 0;
  shape[0] = static_cast<size_t>(rows);
  if (batch.get_element_type() == ov::element::string) {
    ov::Tensor out(ov::element::string, shape);
    const std::string* src = batch.data<std::string>() + static_cast<size_t>(row0) * per_row;
    std::copy(src, src + out.get_size(), out.data<std::string>());
    return out;
  }
  const size_t row_bytes = total ? batch.get_byte_size() / total : 0;
  auto* base = static_cast<uint8_t*>(const_cast<void*>(batch.data())) + static_cast<size_t>(row0) * row_bytes;
  return ov::Tensor(batch.get_element_type(), shape, base);
}

}  // namespace ovfast

#include "ovfast/transport/forward_queue.hpp"

namespace ovfast {

namespace {
bool nothing_queued(const ForwardBatch& b) { return b.calls.empty() && b.failures.empty() && b.cancelled.empty(); }
}  // namespace

uint64_t ForwardQueue::push(std::string method, std::string request, Answer answer, CancelLink link) {
  bool was_empty;
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return 0;
    id = next_id_++;
    pending_.emplace(id, std::move(answer));
    was_empty = nothing_queued(queued_);
    queued_.calls.push_back({id, std::move(method), std::move(request)});
    if (link.id != nullptr) link.id->store(id);
    if (link.cancelled != nullptr && link.cancelled->load()) queued_.cancelled.push_back(id);
  }
  forwarded_.fetch_add(1, std::memory_order_relaxed);
  // NOTE: as CompletionQueue: only the empty -> non-empty edge signals; drain()
  // resets the eventfd before it takes the queue, so nothing pushed is missed.
  if (was_empty) wakeup_.notify();
  return id;
}

void ForwardQueue::report(FailureNotice notice) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    was_empty = nothing_queued(queued_);
    queued_.failures.push_back(std::move(notice));
  }
  if (was_empty) wakeup_.notify();
}

void ForwardQueue::cancel(uint64_t id) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || pending_.count(id) == 0) return;
    was_empty = nothing_queued(queued_);
    queued_.cancelled.push_back(id);
  }
  if (was_empty) wakeup_.notify();
}

ForwardBatch ForwardQueue::drain() {
  wakeup_.reset();
  ForwardBatch out;
  std::lock_guard<std::mutex> lock(mu_);
  std::swap(out, queued_);
  return out;
}

bool ForwardQueue::respond(uint64_t id, ForwardReply reply) {
  Answer answer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return false;
    answer = std::move(it->second);
    pending_.erase(it);
  }
  answer(std::move(reply));
  return true;
}

void ForwardQueue::close(const ForwardReply& reply) {
  std::unordered_map<uint64_t, Answer> failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    failed.swap(pending_);
    queued_ = {};
  }
  for (auto& [id, answer] : failed) {
    ForwardReply copy = reply;
    answer(std::move(copy));
  }
}

size_t ForwardQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

}  // namespace ovfast

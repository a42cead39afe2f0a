#include "ovfast/transport/forward_queue.hpp"

namespace ovfast {

bool ForwardQueue::push(std::string method, std::string request, Answer answer) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    const uint64_t id = next_id_++;
    pending_.emplace(id, std::move(answer));
    was_empty = queued_.calls.empty() && queued_.failures.empty();
    queued_.calls.push_back({id, std::move(method), std::move(request)});
  }
  forwarded_.fetch_add(1, std::memory_order_relaxed);
  // NOTE: as CompletionQueue: only the empty -> non-empty edge signals; drain()
  // resets the eventfd before it takes the queue, so nothing pushed is missed.
  if (was_empty) wakeup_.notify();
  return true;
}

void ForwardQueue::report(FailureNotice notice) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    was_empty = queued_.calls.empty() && queued_.failures.empty();
    queued_.failures.push_back(std::move(notice));
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

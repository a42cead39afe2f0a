#include "ovfast/completion.hpp"

namespace ovfast {

void CompletionQueue::push(Completion&& c) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_empty = items_.empty();
    items_.push_back(std::move(c));
  }
  // NOTE: only the empty -> non-empty edge needs a wakeup; drain() resets the
  // counter before it swaps, so an item pushed in between is either taken by
  // that swap or signals again.
  if (was_empty) wakeup_.notify();
}

std::vector<Completion> CompletionQueue::drain() {
  wakeup_.reset();
  std::vector<Completion> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(items_);
  return out;
}

}  // namespace ovfast

#include "ovfast/completion.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace ovfast {

CompletionQueue::CompletionQueue() {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("eventfd failed");
}

CompletionQueue::~CompletionQueue() {
  if (fd_ >= 0) ::close(fd_);
}

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
  if (was_empty) {
    uint64_t one = 1;
    ssize_t r;
    do { r = ::write(fd_, &one, sizeof one); } while (r < 0 && errno == EINTR);
  }
}

std::vector<Completion> CompletionQueue::drain() {
  uint64_t count;
  ssize_t r;
  do { r = ::read(fd_, &count, sizeof count); } while (r < 0 && errno == EINTR);
  std::vector<Completion> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.swap(items_);
  return out;
}

}  // namespace ovfast

// CompletionQueue: the only way results travel from OpenVINO threads back to
// Python. push() is called from any thread and never touches Python; the
// asyncio loop watches fd() and calls drain() on its own thread.
#pragma once
#include <mutex>
#include <vector>

#include "ovfast/event_fd.hpp"
#include "ovfast/request.hpp"

namespace ovfast {

class CompletionQueue {
 public:
  CompletionQueue() = default;
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Thread-safe. Signals the eventfd when the queue goes from empty to non-empty.
  void push(Completion&& c);
  // Resets the eventfd and takes everything queued so far. Non-blocking.
  std::vector<Completion> drain();
  int fd() const { return wakeup_.fd(); }

 private:
  EventFd wakeup_;
  std::mutex mu_;
  std::vector<Completion> items_;  // guarded by mu_
};

}  // namespace ovfast

// WorkerPool: a fixed set of threads, created once and reused, for work that
// must not run on the submitting thread (the asyncio loop): JPEG/PNG decoding.
//
// Threading: post() and parallel_for() may be called from any thread,
// including a worker. Tasks run in FIFO order on whichever worker is free.
// The destructor finishes queued tasks, then joins the workers.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ovfast {

class WorkerPool {
 public:
  explicit WorkerPool(unsigned threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> task);
  // Runs fn(0..n-1), the caller taking part: items are claimed one at a time
  // by the caller and by up to `max_helpers` workers, and the call returns once
  // every item is done. Never deadlocks: the caller alone can finish the work.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn, unsigned max_helpers);
  unsigned size() const { return static_cast<unsigned>(threads_.size()); }

  // The process-wide pool: one thread per core, created on first use.
  static WorkerPool& shared();

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace ovfast

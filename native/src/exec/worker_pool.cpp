#include "ovfast/exec/worker_pool.hpp"

#include <algorithm>
#include <atomic>
#include <memory>

namespace ovfast {

WorkerPool::WorkerPool(unsigned threads) {
  threads = std::max(1u, threads);
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void WorkerPool::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, and everything queued has run
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

void WorkerPool::parallel_for(size_t n, const std::function<void(size_t)>& fn, unsigned max_helpers) {
  if (n == 0) return;
  struct Shared {
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::condition_variable cv;
    size_t done = 0;  // guarded by mu
  };
  auto shared = std::make_shared<Shared>();
  // NOTE: helpers hold `fn` by pointer; they touch it only while claiming an item,
  // and the caller does not return before every claimed item is done.
  const std::function<void(size_t)>* work = &fn;
  auto run = [shared, work, n] {
    size_t finished = 0;
    for (size_t i = shared->next.fetch_add(1); i < n; i = shared->next.fetch_add(1)) {
      (*work)(i);
      ++finished;
    }
    if (finished) {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->done += finished;
      if (shared->done == n) shared->cv.notify_all();
    }
  };
  const size_t helpers = std::min<size_t>(max_helpers, n - 1);
  for (size_t h = 0; h < helpers; ++h) post(run);
  run();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->done == n; });
}

WorkerPool& WorkerPool::shared() {
  // NOTE: leaked on purpose: worker threads must not be joined during static
  // destruction, after the interpreter or OpenVINO may already be gone.
  static WorkerPool* pool = new WorkerPool(std::max(1u, std::thread::hardware_concurrency()));
  return *pool;
}

}  // namespace ovfast

// Clocks for the dynamic batcher's queue delay.
//
// SteadyClock is std::chrono::steady_clock (monotonic). ManualClock is
// advanced by hand (tests): every waiter subscribed to it is woken on each
// advance(), and advance() returns only once each of them has looked at the
// new time again, so a test observes the batcher's decision for an instant
// without sleeping.
//
// Threading: read() from any thread; a Waiter belongs to the thread that
// waits on it and is guarded by the mutex it was subscribed with. Clocks are
// shared (shared_ptr) by every batcher that uses them.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

namespace ovfast {

inline constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

class Clock {
 public:
  // One reading: the time and, for manual clocks, how many advances produced it.
  struct Reading {
    uint64_t ns = 0;
    uint64_t epoch = 0;
  };
  // A thread that waits on `cv` (guarded by `mu`) for the clock.
  struct Waiter {
    std::mutex* mu = nullptr;
    std::condition_variable* cv = nullptr;
    uint64_t settled_epoch = 0;  // guarded by the clock's own mutex
  };

  virtual ~Clock() = default;
  virtual Reading read() = 0;
  uint64_t now_ns() { return read().ns; }
  // Registers a waiter; the returned handle stays valid until unsubscribe().
  virtual std::shared_ptr<Waiter> subscribe(std::mutex* mu, std::condition_variable* cv);
  virtual void unsubscribe(const std::shared_ptr<Waiter>& w);
  // Waits (lock held on w->mu) until notified or the clock reaches deadline_ns
  // (kNever: only a notification). `seen` is the reading the caller decided on.
  virtual void wait_until(std::unique_lock<std::mutex>& lock, Waiter& w, uint64_t deadline_ns, Reading seen) = 0;
};

class SteadyClock final : public Clock {
 public:
  Reading read() override;
  void wait_until(std::unique_lock<std::mutex>& lock, Waiter& w, uint64_t deadline_ns, Reading seen) override;
};

class ManualClock final : public Clock {
 public:
  Reading read() override;
  std::shared_ptr<Waiter> subscribe(std::mutex* mu, std::condition_variable* cv) override;
  void unsubscribe(const std::shared_ptr<Waiter>& w) override;
  void wait_until(std::unique_lock<std::mutex>& lock, Waiter& w, uint64_t deadline_ns, Reading seen) override;
  // Moves time forward, wakes every waiter and returns once each one has
  // decided on the new time (it is waiting again, or has unsubscribed).
  // Must not be called with any waiter's mutex held.
  void advance_ns(uint64_t ns);

 private:
  std::mutex mu_;
  std::condition_variable settled_cv_;
  uint64_t now_ = 1'000'000'000;  // guarded by mu_; starts off zero so "enqueued at 0" is never ambiguous
  uint64_t epoch_ = 0;            // guarded by mu_
  std::vector<std::shared_ptr<Waiter>> waiters_;  // guarded by mu_
};

// The process-wide steady clock.
std::shared_ptr<Clock> steady_clock();

}  // namespace ovfast

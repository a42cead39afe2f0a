#include "ovfast/clock.hpp"

#include <algorithm>
#include <chrono>

#include "ovfast/request.hpp"

namespace ovfast {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

Status InferJob::unwanted(uint64_t now) const {
  if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed))
    return {StatusCode::CANCELLED, "Request cancelled by the client before it started"};
  if (deadline_ns != 0 && now >= deadline_ns)
    return {StatusCode::DEADLINE_EXCEEDED, "Deadline exceeded before the request started"};
  return Status::ok();
}

std::shared_ptr<Clock::Waiter> Clock::subscribe(std::mutex* mu, std::condition_variable* cv) {
  auto w = std::make_shared<Waiter>();
  w->mu = mu;
  w->cv = cv;
  return w;
}

void Clock::unsubscribe(const std::shared_ptr<Waiter>&) {}

Clock::Reading SteadyClock::read() {
  auto t = std::chrono::steady_clock::now().time_since_epoch();
  return {static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t).count()), 0};
}

void SteadyClock::wait_until(std::unique_lock<std::mutex>& lock, Waiter& w, uint64_t deadline_ns, Reading) {
  if (deadline_ns == kNever) {
    w.cv->wait(lock);
    return;
  }
  std::chrono::steady_clock::time_point tp{std::chrono::nanoseconds(deadline_ns)};
  w.cv->wait_until(lock, tp);
}

Clock::Reading ManualClock::read() {
  std::lock_guard<std::mutex> g(mu_);
  return {now_, epoch_};
}

std::shared_ptr<Clock::Waiter> ManualClock::subscribe(std::mutex* mu, std::condition_variable* cv) {
  auto w = Clock::subscribe(mu, cv);
  std::lock_guard<std::mutex> g(mu_);
  w->settled_epoch = epoch_;
  waiters_.push_back(w);
  return w;
}

void ManualClock::unsubscribe(const std::shared_ptr<Waiter>& w) {
  std::lock_guard<std::mutex> g(mu_);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
  settled_cv_.notify_all();
}

void ManualClock::wait_until(std::unique_lock<std::mutex>& lock, Waiter& w, uint64_t, Reading seen) {
  {
    std::lock_guard<std::mutex> g(mu_);
    // NOTE: settle on the epoch the caller decided on, not the current one: an
    // advance() racing this call has not been looked at yet, and its notify
    // (which needs `lock`'s mutex) arrives once cv.wait() below releases it.
    w.settled_epoch = std::max(w.settled_epoch, seen.epoch);
    settled_cv_.notify_all();
  }
  w.cv->wait(lock);
}

void ManualClock::advance_ns(uint64_t ns) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> g(mu_);
    now_ += ns;
    epoch = ++epoch_;
    waiters = waiters_;
  }
  for (const auto& w : waiters) {
    std::lock_guard<std::mutex> g(*w->mu);
    w->cv->notify_all();
  }
  std::unique_lock<std::mutex> lock(mu_);
  settled_cv_.wait(lock, [&] {
    for (const auto& w : waiters_)
      if (w->settled_epoch < epoch) return false;
    return true;
  });
}

std::shared_ptr<Clock> steady_clock() {
  static std::shared_ptr<Clock> clock = std::make_shared<SteadyClock>();
  return clock;
}

}  // namespace ovfast

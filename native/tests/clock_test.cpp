// ManualClock and its waiters (ovfast/clock.hpp): advance_ns() returns only
// once every subscribed waiter has looked at the new time, so a test sees a
// waiter's decision at an exact instant without sleeping. SteadyClock is only
// checked for what holds on any machine (monotonic; a past deadline returns).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "ovfast/clock.hpp"

namespace ovfast {
namespace {

constexpr uint64_t kUs = 1000;

// A thread that waits on `clock` until `deadline_ns` and records the reading
// it fired on: the shape of the batcher's loop.
class DeadlineWaiter {
 public:
  DeadlineWaiter(Clock& clock, uint64_t deadline_ns) : clock_(clock), deadline_(deadline_ns) {
    // Subscribed before the thread starts, so the first advance already waits for it.
    handle_ = clock_.subscribe(&mu_, &cv_);
    thread_ = std::thread([this] { run(); });
  }
  ~DeadlineWaiter() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }
  bool fired() {
    std::lock_guard<std::mutex> g(mu_);
    return fired_;
  }
  uint64_t fired_at() {
    std::lock_guard<std::mutex> g(mu_);
    return fired_at_;
  }
  int decisions() {
    std::lock_guard<std::mutex> g(mu_);
    return decisions_;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      Clock::Reading r = clock_.read();
      ++decisions_;
      if (!fired_ && r.ns >= deadline_) {
        fired_ = true;
        fired_at_ = r.ns;
      }
      clock_.wait_until(lock, *handle_, fired_ ? kNever : deadline_, r);
    }
    lock.unlock();
    clock_.unsubscribe(handle_);
  }

  Clock& clock_;
  const uint64_t deadline_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<Clock::Waiter> handle_;
  bool stop_ = false;        // guarded by mu_
  bool fired_ = false;       // guarded by mu_
  uint64_t fired_at_ = 0;    // guarded by mu_
  int decisions_ = 0;        // guarded by mu_
  std::thread thread_;
};

TEST(ManualClock, StartsAwayFromZeroAndAdvancesExactly) {
  ManualClock clock;
  const Clock::Reading r0 = clock.read();
  EXPECT_GT(r0.ns, 0u);
  clock.advance_ns(250);
  const Clock::Reading r1 = clock.read();
  EXPECT_EQ(r1.ns, r0.ns + 250);
  EXPECT_EQ(r1.epoch, r0.epoch + 1);
  EXPECT_EQ(clock.now_ns(), r1.ns);
}

TEST(ManualClock, WaiterFiresExactlyAtItsDeadline) {
  ManualClock clock;
  const uint64_t start = clock.now_ns();
  DeadlineWaiter w(clock, start + 1000 * kUs);
  clock.advance_ns(999 * kUs);
  EXPECT_FALSE(w.fired()) << "at 999 us the deadline has not come";
  clock.advance_ns(1 * kUs);
  EXPECT_TRUE(w.fired()) << "advance returned, so the waiter has already looked at 1000 us";
  EXPECT_EQ(w.fired_at(), start + 1000 * kUs);
}

TEST(ManualClock, EveryWaiterSettlesBeforeAdvanceReturns) {
  ManualClock clock;
  const uint64_t start = clock.now_ns();
  std::vector<std::unique_ptr<DeadlineWaiter>> waiters;
  for (uint64_t i = 1; i <= 4; ++i) waiters.push_back(std::make_unique<DeadlineWaiter>(clock, start + i * 10 * kUs));
  for (uint64_t step = 1; step <= 4; ++step) {
    clock.advance_ns(10 * kUs);
    for (uint64_t i = 1; i <= 4; ++i)
      EXPECT_EQ(waiters[i - 1]->fired(), i <= step) << "waiter " << i << " after step " << step;
  }
  for (uint64_t i = 1; i <= 4; ++i) EXPECT_EQ(waiters[i - 1]->fired_at(), start + i * 10 * kUs);
}

TEST(ManualClock, EachAdvanceIsLookedAtAgain) {
  ManualClock clock;
  DeadlineWaiter w(clock, kNever);
  for (int i = 0; i < 20; ++i) clock.advance_ns(1);
  // at least one decision per advance (the first may already see epoch 1); a missed wakeup leaves it short
  EXPECT_GE(w.decisions(), 20);
  EXPECT_FALSE(w.fired());
}

TEST(ManualClock, AdvanceDoesNotWaitForAnUnsubscribedWaiter) {
  ManualClock clock;
  std::mutex mu;
  std::condition_variable cv;
  auto handle = clock.subscribe(&mu, &cv);
  clock.unsubscribe(handle);
  clock.advance_ns(5);  // would block forever if the handle were still counted
  EXPECT_EQ(clock.read().epoch, 1u);
}

TEST(ManualClock, StoppedWaiterReleasesLaterAdvances) {
  ManualClock clock;
  auto w = std::make_unique<DeadlineWaiter>(clock, clock.now_ns() + 5);
  clock.advance_ns(5);
  EXPECT_TRUE(w->fired());
  w->stop();  // unsubscribes on its way out
  clock.advance_ns(5);
}

TEST(ManualClock, ConcurrentAdvancersAllReturn) {
  ManualClock clock;
  const uint64_t start = clock.now_ns();
  DeadlineWaiter w(clock, start + 400);
  std::vector<std::thread> advancers;
  for (int t = 0; t < 4; ++t)
    advancers.emplace_back([&] {
      for (int i = 0; i < 100; ++i) clock.advance_ns(1);
    });
  for (auto& t : advancers) t.join();
  EXPECT_EQ(clock.now_ns(), start + 400);
  EXPECT_EQ(clock.read().epoch, 400u);
  EXPECT_TRUE(w.fired()) << "the last advance returned only after the waiter saw the final time";
  EXPECT_EQ(w.fired_at(), start + 400);
}

TEST(SteadyClock, IsMonotonic) {
  SteadyClock clock;
  uint64_t last = clock.now_ns();
  for (int i = 0; i < 1000; ++i) {
    const uint64_t now = clock.now_ns();
    EXPECT_GE(now, last);
    last = now;
  }
  EXPECT_EQ(steady_clock().get(), steady_clock().get()) << "one process-wide instance";
}

TEST(SteadyClock, PastDeadlineReturnsWithoutNotification) {
  SteadyClock clock;
  std::mutex mu;
  std::condition_variable cv;
  auto handle = clock.subscribe(&mu, &cv);
  std::unique_lock<std::mutex> lock(mu);
  const Clock::Reading r = clock.read();
  clock.wait_until(lock, *handle, r.ns > 0 ? r.ns - 1 : 0, r);  // nobody notifies: only the deadline ends it
  EXPECT_TRUE(lock.owns_lock());
  clock.unsubscribe(handle);
}

}  // namespace
}  // namespace ovfast

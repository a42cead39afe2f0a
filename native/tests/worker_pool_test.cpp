// WorkerPool (ovfast/exec/worker_pool.hpp): post() runs every task, the
// destructor finishes what is queued, and parallel_for() covers every index
// exactly once whatever the number of helpers, including when it is called
// from a worker while every other worker is busy (the caller alone finishes).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ovfast/exec/worker_pool.hpp"

namespace ovfast {
namespace {

// A gate tasks wait at until the test opens it.
class Gate {
 public:
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void pass() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;  // guarded by mu_
};

// Counts how often each index ran.
struct Hits {
  explicit Hits(size_t n) : counts(n) {}
  void operator()(size_t i) { counts[i].fetch_add(1, std::memory_order_relaxed); }
  bool each_once() const {
    for (const auto& c : counts)
      if (c.load() != 1) return false;
    return true;
  }
  std::vector<std::atomic<int>> counts;
};

TEST(WorkerPool, MakesAtLeastOneThread) {
  WorkerPool none(0);
  EXPECT_EQ(none.size(), 1u);
  WorkerPool three(3);
  EXPECT_EQ(three.size(), 3u);
}

TEST(WorkerPool, PostRunsEveryTaskOffTheCallingThread) {
  constexpr int kTasks = 200;
  std::atomic<int> ran{0};
  std::atomic<int> on_caller{0};
  const std::thread::id caller = std::this_thread::get_id();
  {
    WorkerPool pool(2);
    for (int i = 0; i < kTasks; ++i)
      pool.post([&] {
        if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
        ran.fetch_add(1);
      });
  }  // the destructor waits for all of them
  EXPECT_EQ(ran.load(), kTasks);
  EXPECT_EQ(on_caller.load(), 0);
}

TEST(WorkerPool, PostFromManyThreads) {
  constexpr int kThreads = 4, kEach = 100;
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2);
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t)
      posters.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) pool.post([&] { ran.fetch_add(1); });
      });
    for (auto& p : posters) p.join();
  }
  EXPECT_EQ(ran.load(), kThreads * kEach);
}

TEST(WorkerPool, DestructorFinishesQueuedTasks) {
  Gate gate;
  std::atomic<int> ran{0};
  std::thread opener;
  {
    WorkerPool pool(1);
    pool.post([&] { gate.pass(); });  // the only worker is busy: the rest stays queued
    for (int i = 0; i < 10; ++i) pool.post([&] { ran.fetch_add(1); });
    EXPECT_EQ(ran.load(), 0);
    // Opened once the destructor below is (very likely) waiting; correct either way.
    opener = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      gate.open();
    });
  }
  EXPECT_EQ(ran.load(), 10);
  opener.join();
}

TEST(WorkerPool, ParallelForCoversEveryIndexOnceWithAnyNumberOfHelpers) {
  WorkerPool pool(3);
  for (unsigned helpers : {0u, 1u, 2u, 3u, 8u}) {
    for (size_t n : {size_t{1}, size_t{2}, size_t{7}, size_t{500}}) {
      Hits hits(n);
      pool.parallel_for(n, [&](size_t i) { hits(i); }, helpers);
      EXPECT_TRUE(hits.each_once()) << "n " << n << ", helpers " << helpers;
    }
  }
}

TEST(WorkerPool, ParallelForOfNothingReturnsAtOnce) {
  WorkerPool pool(1);
  bool called = false;
  pool.parallel_for(0, [&](size_t) { called = true; }, 4);
  EXPECT_FALSE(called);
}

TEST(WorkerPool, ParallelForWithoutHelpersRunsOnTheCaller) {
  WorkerPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> elsewhere{0};
  pool.parallel_for(50, [&](size_t) {
    if (std::this_thread::get_id() != caller) elsewhere.fetch_add(1);
  }, 0);
  EXPECT_EQ(elsewhere.load(), 0);
}

TEST(WorkerPool, ParallelForFinishesWhileEveryWorkerIsBusy) {
  Gate gate;  // outlives the pool, whose worker is still leaving pass() when the test ends
  WorkerPool pool(1);
  pool.post([&] { gate.pass(); });  // helpers queue behind this and never get to help
  Hits hits(64);
  pool.parallel_for(64, [&](size_t i) { hits(i); }, 4);
  EXPECT_TRUE(hits.each_once());
  gate.open();
}

TEST(WorkerPool, ParallelForFromInsideWorkersDoesNotDeadlock) {
  // Both workers call parallel_for on their own pool at once: no worker is free
  // to help either of them, so each caller must finish its own items.
  constexpr size_t kN = 300;
  Hits first(kN), second(kN);
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;  // guarded by mu
  WorkerPool pool(2);  // declared last: joined before what its tasks touch goes away
  for (Hits* hits : {&first, &second})
    pool.post([&, hits] {
      pool.parallel_for(kN, [hits](size_t i) { (*hits)(i); }, 2);
      std::lock_guard<std::mutex> lock(mu);
      ++finished;
      cv.notify_all();
    });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished == 2; })) << "deadlock";
  }
  EXPECT_TRUE(first.each_once());
  EXPECT_TRUE(second.each_once());
}

TEST(WorkerPool, NestedParallelForInsideParallelFor) {
  WorkerPool pool(2);
  constexpr size_t kOuter = 8, kInner = 40;
  Hits hits(kOuter * kInner);
  pool.parallel_for(kOuter, [&](size_t o) {
    pool.parallel_for(kInner, [&](size_t i) { hits(o * kInner + i); }, 2);
  }, 2);
  EXPECT_TRUE(hits.each_once());
}

}  // namespace
}  // namespace ovfast

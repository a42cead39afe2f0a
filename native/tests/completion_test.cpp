// CompletionQueue (ovfast/completion.hpp): the eventfd is readable exactly
// when something is queued, drain() hands everything over once, and with many
// producers nothing is lost, duplicated or reordered within a producer.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <thread>
#include <vector>

#include "ovfast/completion.hpp"

namespace ovfast {
namespace {

// True when `fd` is readable; waits at most `timeout_ms` (0: just looks).
bool readable(int fd, int timeout_ms = 0) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do { r = ::poll(&p, 1, timeout_ms); } while (r < 0 && errno == EINTR);
  return r == 1 && (p.revents & POLLIN);
}

Completion completion(uintptr_t tag, std::string payload = {}) {
  Completion c;
  c.context = reinterpret_cast<void*>(tag);
  c.payload = std::move(payload);
  return c;
}

uintptr_t tag_of(const Completion& c) { return reinterpret_cast<uintptr_t>(c.context); }

TEST(CompletionQueue, FdIsReadableOnlyWhileItemsWait) {
  CompletionQueue q;
  ASSERT_GE(q.fd(), 0);
  EXPECT_FALSE(readable(q.fd()));
  q.push(completion(1, "payload"));
  EXPECT_TRUE(readable(q.fd()));
  std::vector<Completion> got = q.drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(tag_of(got[0]), 1u);
  EXPECT_EQ(got[0].payload, "payload");
  EXPECT_FALSE(readable(q.fd())) << "drain resets the eventfd";
}

TEST(CompletionQueue, DrainTakesEverythingInPushOrder) {
  CompletionQueue q;
  for (uintptr_t i = 1; i <= 5; ++i) q.push(completion(i));
  std::vector<Completion> got = q.drain();
  ASSERT_EQ(got.size(), 5u);
  for (uintptr_t i = 0; i < 5; ++i) EXPECT_EQ(tag_of(got[i]), i + 1);
  EXPECT_TRUE(q.drain().empty());
  EXPECT_FALSE(readable(q.fd()));
}

TEST(CompletionQueue, DrainOfAnEmptyQueueDoesNotBlock) {
  CompletionQueue q;
  EXPECT_TRUE(q.drain().empty());  // the eventfd is non-blocking
  q.push(completion(7));
  EXPECT_EQ(q.drain().size(), 1u);
}

TEST(CompletionQueue, CarriesStatusAndOutputs) {
  CompletionQueue q;
  Completion c = completion(3);
  c.status = invalid_argument("bad input");
  OutputTensor o;
  o.name = "y";
  o.dtype = DataType::FP32;
  o.shape = {2};
  o.tensor = ov::Tensor(ov::element::f32, ov::Shape{2});
  const void* data = o.tensor.data();
  c.outputs.push_back(std::move(o));
  c.infer_us = 11;
  c.wait_us = 12;
  q.push(std::move(c));
  std::vector<Completion> got = q.drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].status.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(got[0].status.message(), "bad input");
  ASSERT_EQ(got[0].outputs.size(), 1u);
  EXPECT_EQ(got[0].outputs[0].tensor.data(), data) << "moved, not copied";
  EXPECT_EQ(got[0].infer_us, 11u);
  EXPECT_EQ(got[0].wait_us, 12u);
}

TEST(CompletionQueue, ClosesItsFd) {
  int fd;
  {
    CompletionQueue q;
    fd = q.fd();
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

// Producers push tagged items while a consumer sleeps in poll() and drains
// whenever the fd says so: a lost wakeup leaves items queued with the fd
// silent, and the consumer's poll times out (a liveness guard, not a timing).
TEST(CompletionQueue, ManyProducersOneConsumerLoseNothing) {
  constexpr uintptr_t kProducers = 4;
  constexpr uintptr_t kPerProducer = 5000;
  CompletionQueue q;
  std::vector<std::vector<uintptr_t>> seen(kProducers);
  bool consumer_ok = true;
  size_t total = 0;
  std::thread consumer([&] {
    while (total < kProducers * kPerProducer) {
      if (!readable(q.fd(), 30'000)) {
        consumer_ok = false;  // items are missing and no wakeup came
        return;
      }
      for (const Completion& c : q.drain()) {
        const uintptr_t tag = tag_of(c);
        seen[tag / kPerProducer].push_back(tag % kPerProducer);
        ++total;
      }
    }
  });
  std::vector<std::thread> producers;
  for (uintptr_t p = 0; p < kProducers; ++p)
    producers.emplace_back([&q, p] {
      for (uintptr_t i = 0; i < kPerProducer; ++i) q.push(completion(p * kPerProducer + i));
    });
  for (auto& t : producers) t.join();
  consumer.join();
  ASSERT_TRUE(consumer_ok) << "no wakeup with " << (kProducers * kPerProducer - total) << " items queued";
  EXPECT_EQ(total, kProducers * kPerProducer);
  for (uintptr_t p = 0; p < kProducers; ++p) {
    ASSERT_EQ(seen[p].size(), kPerProducer) << "producer " << p;
    for (uintptr_t i = 0; i < kPerProducer; ++i) ASSERT_EQ(seen[p][i], i) << "producer " << p << " out of order";
  }
  EXPECT_TRUE(q.drain().empty());
  EXPECT_FALSE(readable(q.fd()));
}

}  // namespace
}  // namespace ovfast

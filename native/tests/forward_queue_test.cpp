// ForwardQueue (ovfast/transport/forward_queue.hpp): calls are drained in
// order with their ids, each is answered exactly once (by respond or by
// close), the eventfd is readable exactly while calls wait to be drained,
// cancellations of pending calls travel with the next drain, and many
// pushing threads lose nothing.
#include <gtest/gtest.h>

#include <poll.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "ovfast/transport/forward_queue.hpp"

namespace ovfast {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do { r = ::poll(&p, 1, 0); } while (r < 0 && errno == EINTR);
  return r == 1 && (p.revents & POLLIN);
}

// Records the replies each call got, by the tag it was pushed with.
struct Replies {
  std::mutex mu;
  std::map<int, std::vector<ForwardReply>> by_tag;
  ForwardQueue::Answer answer(int tag) {
    return [this, tag](ForwardReply&& r) {
      std::lock_guard<std::mutex> lock(mu);
      by_tag[tag].push_back(std::move(r));
    };
  }
};

TEST(ForwardQueue, DrainRespondRoundTrip) {
  ForwardQueue q;
  Replies got;
  EXPECT_FALSE(readable(q.fd()));
  ASSERT_TRUE(q.push("/a.S/One", "req1", got.answer(1)));
  ASSERT_TRUE(q.push("/a.S/Two", "req2", got.answer(2)));
  EXPECT_TRUE(readable(q.fd()));
  std::vector<ForwardedCall> calls = q.drain().calls;
  EXPECT_FALSE(readable(q.fd()));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "/a.S/One");
  EXPECT_EQ(calls[0].request, "req1");
  EXPECT_EQ(calls[1].request, "req2");
  EXPECT_NE(calls[0].id, calls[1].id);
  EXPECT_EQ(q.pending(), 2u) << "drained is not answered";
  EXPECT_TRUE(q.respond(calls[1].id, {0, "", "resp2"}));
  EXPECT_TRUE(q.respond(calls[0].id, {5, "no such model", ""}));
  EXPECT_FALSE(q.respond(calls[0].id, {0, "", "again"})) << "answered once only";
  EXPECT_FALSE(q.respond(12345, {0, "", ""}));
  EXPECT_EQ(q.pending(), 0u);
  ASSERT_EQ(got.by_tag[1].size(), 1u);
  EXPECT_EQ(got.by_tag[1][0].grpc_code, 5);
  EXPECT_EQ(got.by_tag[1][0].message, "no such model");
  ASSERT_EQ(got.by_tag[2].size(), 1u);
  EXPECT_EQ(got.by_tag[2][0].response, "resp2");
  EXPECT_EQ(q.forwarded(), 2u);
}

TEST(ForwardQueue, FailureReportsTravelWithTheCalls) {
  ForwardQueue q;
  Replies got;
  q.report({"add", "2", "Invalid input shape"});
  EXPECT_TRUE(readable(q.fd())) << "a report wakes the loop too";
  ASSERT_TRUE(q.push("/a.S/M", "req", got.answer(1)));
  ForwardBatch b = q.drain();
  EXPECT_FALSE(readable(q.fd()));
  ASSERT_EQ(b.failures.size(), 1u);
  EXPECT_EQ(b.failures[0].model, "add");
  EXPECT_EQ(b.failures[0].version, "2");
  EXPECT_EQ(b.failures[0].message, "Invalid input shape");
  ASSERT_EQ(b.calls.size(), 1u);
  EXPECT_EQ(q.pending(), 1u) << "a report is not a call: nothing to answer";
}

TEST(ForwardQueue, CancellationsOfPendingCallsTravelWithTheNextDrain) {
  ForwardQueue q;
  Replies got;
  std::atomic<uint64_t> id_a{0}, id_b{0};
  std::atomic<bool> not_cancelled{false}, cancelled{true};
  const uint64_t a = q.push("/a.S/M", "a", got.answer(1), CancelLink{&id_a, &not_cancelled});
  ASSERT_NE(a, 0u);
  EXPECT_EQ(id_a.load(), a) << "the id is known before the call can be answered";
  EXPECT_TRUE(q.drain().cancelled.empty());
  q.cancel(a);
  EXPECT_TRUE(readable(q.fd())) << "a cancellation wakes the loop";
  q.cancel(424242);  // not a pending call: ignored
  ForwardBatch first = q.drain();
  EXPECT_EQ(first.cancelled, std::vector<uint64_t>{a});
  // cancelled before its push returned (OnCancel racing the forward): queued as cancelled at once
  const uint64_t b = q.push("/a.S/M", "b", got.answer(2), CancelLink{&id_b, &cancelled});
  EXPECT_EQ(id_b.load(), b);
  ForwardBatch second = q.drain();
  ASSERT_EQ(second.calls.size(), 1u);
  EXPECT_EQ(second.cancelled, std::vector<uint64_t>{b});
  // a cancelled call is still answered once, by its handler
  EXPECT_TRUE(q.respond(a, {1, "Cancelled", ""}));
  q.cancel(a);  // answered: ignored
  EXPECT_TRUE(q.drain().cancelled.empty());
  EXPECT_EQ(got.by_tag[1].at(0).grpc_code, 1);
  EXPECT_EQ(q.pending(), 1u);
}

TEST(ForwardQueue, CloseAnswersEveryPendingCallAndRefusesNewOnes) {
  ForwardQueue q;
  Replies got;
  ASSERT_TRUE(q.push("/a.S/M", "drained", got.answer(1)));
  const uint64_t drained_id = q.drain().calls.at(0).id;
  ASSERT_TRUE(q.push("/a.S/M", "queued", got.answer(2)));
  q.close({14, "shutting down", {}});
  EXPECT_FALSE(q.push("/a.S/M", "late", got.answer(3)));
  q.report({"m", "1", "late"});
  ForwardBatch left = q.drain();
  EXPECT_TRUE(left.calls.empty()) << "queued calls were answered, not left to drain";
  EXPECT_TRUE(left.failures.empty()) << "reports after close are dropped";
  EXPECT_FALSE(q.respond(drained_id, {0, "", "too late"}));
  ASSERT_EQ(got.by_tag[1].size(), 1u);
  ASSERT_EQ(got.by_tag[2].size(), 1u);
  EXPECT_EQ(got.by_tag[1][0].grpc_code, 14);
  EXPECT_EQ(got.by_tag[2][0].message, "shutting down");
  EXPECT_EQ(got.by_tag.count(3), 0u) << "a refused call's answer is dropped uncalled";
}

TEST(ForwardQueue, ManyProducersLoseNothing) {
  ForwardQueue q;
  Replies got;
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t)
    producers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) ASSERT_TRUE(q.push("/a.S/M", std::to_string(t * kEach + i), got.answer(t * kEach + i)));
    });
  int answered = 0;
  while (answered < kThreads * kEach) {
    for (ForwardedCall& c : q.drain().calls) {
      ASSERT_TRUE(q.respond(c.id, {0, "", c.request}));
      ++answered;
    }
  }
  for (auto& th : producers) th.join();
  EXPECT_EQ(static_cast<int>(got.by_tag.size()), kThreads * kEach);
  for (const auto& [tag, replies] : got.by_tag) {
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].response, std::to_string(tag)) << "each call gets its own answer";
  }
}

}  // namespace
}  // namespace ovfast

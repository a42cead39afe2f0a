// ForwardQueue: the calls the native gRPC front-end does not serve itself, on
// their way to the Python control plane and back. A gRPC thread push()es
// (method path, request bytes) with a callback that answers the call; the
// asyncio loop watches fd(), drain()s, runs the handler and respond()s with
// the call's id. No native thread ever waits for Python. The same way, the
// front-end report()s the requests it failed, for the control plane's log.
//
// Contract: every call pushed while the queue is open is answered exactly
// once, by respond() or by close(). Answers run the pushed callback on the
// thread that answers (the loop, or whoever closes), outside the lock.
// Threading: every method may be called from any thread.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ovfast/event_fd.hpp"

namespace ovfast {

struct ForwardedCall {
  uint64_t id = 0;
  std::string method;   // "/package.Service/Method"
  std::string request;  // the serialized request message
};

struct ForwardReply {
  int grpc_code = 0;     // a grpc::StatusCode value; 0 = OK
  std::string message;   // the status message (UTF-8) when not OK
  std::string response;  // the serialized response message when OK
};

// A request the native front-end answered with an error (the control plane logs it).
struct FailureNotice {
  std::string model;
  std::string version;
  std::string message;
};

struct ForwardBatch {
  std::vector<ForwardedCall> calls;
  std::vector<FailureNotice> failures;
  std::vector<uint64_t> cancelled;  // ids of pending calls whose client went away (cancel())
};

// How a pushed call is told apart for cancel() (both pointers may be null).
// push() sets `*id` under the queue's lock, before the call can be answered;
// a call whose `*cancelled` is already set then is queued as cancelled too. A
// caller that sets its flag before reading its id (both seq_cst) thus never
// loses a cancellation that races with the push.
struct CancelLink {
  std::atomic<uint64_t>* id = nullptr;
  const std::atomic<bool>* cancelled = nullptr;
};

class ForwardQueue {
 public:
  using Answer = std::function<void(ForwardReply&&)>;

  ForwardQueue() = default;
  ForwardQueue(const ForwardQueue&) = delete;
  ForwardQueue& operator=(const ForwardQueue&) = delete;

  // Queues a call; `answer` will be called exactly once. Returns the call's
  // id (never 0); 0 when the queue is closed: then `answer` is dropped
  // uncalled and the caller answers the call itself.
  uint64_t push(std::string method, std::string request, Answer answer, CancelLink link = {});
  // The client of pending call `id` cancelled it, or its deadline passed:
  // the id is handed to the control plane with the next drain(), which stops
  // working on it (it still answers it). Ignored when `id` is not pending.
  void cancel(uint64_t id);
  // Queues a failure report (dropped once closed). Never blocks.
  void report(FailureNotice notice);
  // Takes every call, report and cancellation queued so far and makes fd() unreadable. Non-blocking.
  ForwardBatch drain();
  // Answers call `id`; false when it is not pending (answered, or failed by close()).
  bool respond(uint64_t id, ForwardReply reply);
  // Refuses calls from now on and answers every pending one with `reply`
  // (calls queued but not drained yet included).
  void close(const ForwardReply& reply);

  int fd() const { return wakeup_.fd(); }
  size_t pending() const;
  // Calls pushed since construction.
  uint64_t forwarded() const { return forwarded_.load(std::memory_order_relaxed); }

 private:
  EventFd wakeup_;
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;                          // guarded by mu_
  bool closed_ = false;                           // guarded by mu_
  ForwardBatch queued_;                           // guarded by mu_: pushed / reported, not drained
  std::unordered_map<uint64_t, Answer> pending_;  // guarded by mu_: pushed, not answered
  std::atomic<uint64_t> forwarded_{0};
};

}  // namespace ovfast

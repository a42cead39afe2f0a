// InferPool: the infer requests of one compiled model, leased one at a time.
//
// Ownership: owns the ov::InferRequests. A Lease is the right to use one of
// them; destroying the Lease gives the request back. A request's completion
// callback calls `on_done(slot, error)` on an OpenVINO thread; whoever started
// it keeps its Lease until then.
// Threading: try_lease(), idle() and Lease destruction are thread-safe (one
// internal mutex, never held while calling out). The owner must not destroy
// the pool while a request runs (wait_idle() first).
#pragma once
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include <openvino/runtime/compiled_model.hpp>

namespace ovfast {

class InferPool {
 public:
  using DoneFn = std::function<void(size_t slot, std::exception_ptr error)>;

  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), slot_(other.slot_) { other.pool_ = nullptr; }
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { reset(); }
    size_t slot() const { return slot_; }
    ov::InferRequest& request() const;
    // Gives the request back now.
    void reset();

   private:
    friend class InferPool;
    Lease(InferPool* pool, size_t slot) : pool_(pool), slot_(slot) {}
    InferPool* pool_;
    size_t slot_;
  };

  // Creates `size` requests (at least 1), each calling on_done when it finishes. Throws ov::Exception.
  InferPool(ov::CompiledModel& compiled, int size, DoneFn on_done);
  InferPool(const InferPool&) = delete;
  InferPool& operator=(const InferPool&) = delete;

  // An idle request, or nothing when all are leased. Never blocks.
  std::optional<Lease> try_lease();
  size_t size() const { return requests_.size(); }
  size_t idle();
  // Blocks until every lease is given back.
  void wait_idle();

 private:
  void give_back(size_t slot);

  std::vector<ov::InferRequest> requests_;
  DoneFn on_done_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<size_t> idle_;  // guarded by mu_
};

}  // namespace ovfast

#include "ovfast/exec/infer_pool.hpp"

namespace ovfast {

InferPool::Lease& InferPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = other.pool_;
    slot_ = other.slot_;
    other.pool_ = nullptr;
  }
  return *this;
}

ov::InferRequest& InferPool::Lease::request() const { return pool_->requests_[slot_]; }

void InferPool::Lease::reset() {
  if (pool_) pool_->give_back(slot_);
  pool_ = nullptr;
}

InferPool::InferPool(ov::CompiledModel& compiled, int size, DoneFn on_done) : on_done_(std::move(on_done)) {
  const size_t n = size > 0 ? static_cast<size_t>(size) : 1;
  requests_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    requests_.push_back(compiled.create_infer_request());
    requests_.back().set_callback([this, i](std::exception_ptr err) { on_done_(i, err); });
    idle_.push_back(n - 1 - i);  // slot 0 is leased first
  }
}

std::optional<InferPool::Lease> InferPool::try_lease() {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.empty()) return std::nullopt;
  size_t slot = idle_.back();
  idle_.pop_back();
  return Lease(this, slot);
}

size_t InferPool::idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_.size();
}

void InferPool::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return idle_.size() == requests_.size(); });
}

void InferPool::give_back(size_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(slot);
  // NOTE: notified under the lock: once the last lease is back, wait_idle() may
  // return and the owner destroy the pool, so nothing of `this` is touched after.
  if (idle_.size() == requests_.size()) idle_cv_.notify_all();
}

}  // namespace ovfast

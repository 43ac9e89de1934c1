#include "admission.hpp"

#include <loopbridge/loop/detail/deadline.hpp>
#include <loopbridge/loop/errors.hpp>

#include <algorithm>
#include <string>

namespace loopbridge::detail {

using Clock = std::chrono::steady_clock;

Admission::Admission(const LoopOptions& options, Counters& counters) noexcept
    : capacity_(options.queue_capacity), policy_(options.when_full), full_wait_(options.full_wait), counters_(counters) {}

void Admission::close() noexcept {
  open_.store(false, std::memory_order_release);
  wake_full_waiters();  // they wait for room no longer: the loop refuses work now
}

bool Admission::admit(const SubmitOptions& options, bool on_loop_thread) {
  if (!is_open()) {
    refuse();
    return false;
  }
  if (capacity_ == 0) {
    queued_in_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (try_reserve()) return true;
  // On a loop thread, waiting could wait on this very loop: fail at once instead.
  if (options.when_full.value_or(policy_) == QueueFullPolicy::wait && !on_loop_thread) {
    if (wait_for_room(deadline_after(options.full_wait.value_or(full_wait_)))) return true;
    if (!is_open()) {
      refuse();
      return false;
    }
  }
  refuse(/*queue_full=*/true);
  throw QueueFull("submission refused: the loop's queue holds its capacity of " + std::to_string(capacity_) +
                  " waiting submissions");
}

void Admission::not_queued() noexcept {
  refuse();  // first, so that submitted() never goes down
  queued_in_.fetch_sub(1, std::memory_order_relaxed);
}

void Admission::refuse(bool queue_full) noexcept {
  refused_at_door_.fetch_add(1, std::memory_order_relaxed);
  counters_.rejected(queue_full);
}

bool Admission::try_reserve() noexcept {
  std::uint64_t in = queued_in_.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t out = queued_out_.load(std::memory_order_relaxed);
    if (in > out && in - out >= capacity_) return false;
    if (queued_in_.compare_exchange_weak(in, in + 1, std::memory_order_relaxed)) return true;
  }
}

std::uint64_t Admission::queued() const noexcept {
  // Leaving is counted after entering; read in the other order, the two may cross.
  const std::uint64_t out = queued_out_.load(std::memory_order_relaxed);
  const std::uint64_t in = queued_in_.load(std::memory_order_relaxed);
  return in > out ? in - out : 0;
}

bool Admission::wait_for_room(Clock::time_point deadline) {
  full_waiters_.fetch_add(1, std::memory_order_seq_cst);
  bool reserved = false;
  {
    std::unique_lock lock(full_mutex_);
    for (;;) {
      if (try_reserve()) {
        reserved = true;
        break;
      }
      if (!is_open() || Clock::now() >= deadline) break;
      // The loop wakes waiters after each batch it ran; the slice bounds a missed wake.
      full_cv_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(10)));
    }
  }
  full_waiters_.fetch_sub(1, std::memory_order_relaxed);
  return reserved;
}

void Admission::wake_full_waiters() noexcept {
  if (full_waiters_.load(std::memory_order_seq_cst) == 0) return;
  { std::lock_guard lock(full_mutex_); }
  full_cv_.notify_all();
}

}  // namespace loopbridge::detail

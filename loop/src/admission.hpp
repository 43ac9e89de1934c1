#pragma once

#include "counters.hpp"

#include <loopbridge/loop/options.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace loopbridge::detail {

/// The door of a loop: the host side of every submission. It counts submissions, refuses
/// them once the loop no longer takes work, and under a queue capacity gives each a place in
/// the queue (waiting for one, or throwing QueueFull, as the options say).
class Admission {
public:
  Admission(const LoopOptions& options, Counters& counters) noexcept;

  // ---- the door (lifecycle) ----
  /// From start() on, submissions are taken.
  void open() noexcept { open_.store(true, std::memory_order_release); }
  /// Refuses submissions from now on; those waiting for room stop waiting.
  void close() noexcept;
  /// In a fork() child: refuses submissions, without touching a lock a parent thread may hold.
  void close_in_fork_child() noexcept { open_.store(false, std::memory_order_release); }
  bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }

  // ---- host side ----
  /// Counts the submission and, under a capacity, takes its place in the queue. False when
  /// the door is closed (counted as rejected). Throws QueueFull; on a loop thread a full queue
  /// fails at once (waiting there could wait on the very loop).
  bool admit(const SubmitOptions& options, bool on_loop_thread);
  /// An admitted submission that could not be queued after all (the queue closed since).
  void not_queued() noexcept;
  /// Every submission that reached the door: each one was queued or refused there.
  std::uint64_t submitted() const noexcept {
    return queued_in_.load(std::memory_order_relaxed) + refused_at_door_.load(std::memory_order_relaxed);
  }
  /// Admitted submissions still waiting in the queue.
  std::uint64_t queued() const noexcept;

  // ---- loop thread ----
  /// A queued submission left the queue (started, refused or discarded).
  void dequeued() noexcept { queued_out_.store(queued_out_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  /// After each batch: submissions waiting for room try again.
  void wake_full_waiters() noexcept;

private:
  bool try_reserve() noexcept;
  /// Counts a submission refused before it was queued.
  void refuse(bool queue_full = false) noexcept;
  bool wait_for_room(std::chrono::steady_clock::time_point deadline);

  const std::size_t capacity_;
  const QueueFullPolicy policy_;
  const std::chrono::nanoseconds full_wait_;
  Counters& counters_;
  std::atomic<bool> open_{false};
  // The queued count is split by side (in - out), so that no cache line is written by both.
  // Submissions are not counted apart: each one is queued or refused at the door, so an
  // accepted submission costs one read-modify-write here.
  alignas(64) std::atomic<std::uint64_t> queued_in_{0};
  alignas(64) std::atomic<std::uint64_t> queued_out_{0};
  std::atomic<std::uint64_t> refused_at_door_{0};
  std::atomic<std::uint32_t> full_waiters_{0};
  std::mutex full_mutex_;
  std::condition_variable full_cv_;
};

}  // namespace loopbridge::detail

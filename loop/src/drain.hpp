#pragma once

#include "command_queue.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace loopbridge::detail {

class Admission;
class LoopCore;

/// A loop's command queue and how the loop thread gets to it: the one wake-up (a drain
/// handler posted to the io_context) that a push which finds the queue empty schedules, and
/// the drain that runs the commands, in bounded parts.
class CommandDrain {
public:
  /// Commands one drain runs before it lets the io_context's other work in (timers, the
  /// completions of tasks, the lifecycle's deadlines).
  static constexpr std::size_t kCommandsPerDrain = 1024;

  CommandDrain(LoopCore& core, boost::asio::io_context& io, bool borrowed_io,
               std::chrono::nanoseconds spin_before_sleep) noexcept;

  // ---- any thread ----
  /// Pushes a command and wakes the loop if it may be asleep. False if the queue is closed
  /// (the caller still owns the command).
  bool push(Command& command) noexcept;
  /// Commands waiting (submissions, cancels, stop), not yet started.
  std::size_t depth() const noexcept { return queue_.depth(); }
  bool closed() const noexcept { return queue_.closed(); }
  /// In a fork() child: every push fails from now on (lock-free).
  void close_without_draining() noexcept { (void)queue_.close(); }

  // ---- loop thread ----
  /// Runs what was queued, at most kCommandsPerDrain, then lets the io_context's other work
  /// in (posting the next part), or returns once the queue is empty. Low-latency mode spins
  /// for the next command before it returns.
  void drain(Admission& admission) noexcept;
  /// First thing a drain handler does: a later push may post the next wake-up.
  void wake_taken() noexcept { wake_pending_.exchange(false, std::memory_order_acq_rel); }
  /// Posts a drain handler unless one is pending already (it will find what was pushed).
  void wake() noexcept;
  /// Closes the queue and discards what was left in it, oldest first.
  void close_and_discard() noexcept;
  /// After the last run: waits until every push that woke the loop has finished posting, so
  /// that no post races the io_context's shutdown (or the owner's destruction of a borrowed
  /// one).
  void wait_for_late_wakes() const noexcept;

  /// The clock of a command's scope (RunScope): within a drained batch it starts where the
  /// previous command's scope ended, if that command ran nothing after it (one clock reading
  /// per command instead of two).
  std::chrono::steady_clock::time_point command_start() noexcept {
    if (!batch_clock_armed_) return std::chrono::steady_clock::now();
    batch_clock_armed_ = false;
    return batch_clock_;
  }
  void command_scope_ended(std::chrono::steady_clock::time_point end) noexcept {
    batch_clock_ = end;
    batch_clock_valid_ = true;
  }
  /// User code ran after the command's scope (an error or stall handler, a destructor): the
  /// next command reads the clock.
  void batch_clock_moved() noexcept { batch_clock_valid_ = false; }

private:
  template <class>
  friend class WakeAllocator;

  /// The next batch: what is left of the last one, or all that was queued since.
  Command* take_batch() noexcept;

  LoopCore& core_;
  boost::asio::io_context& io_;
  const bool borrowed_io_;
  const std::chrono::nanoseconds spin_before_sleep_;
  CommandQueue queue_;
  // The memory of the one wake-up that may be pending in the io_context at a time, so that
  // waking the loop never allocates. See wake().
  static constexpr std::size_t kWakeSlotSize = 128;
  alignas(std::max_align_t) std::byte wake_slot_[kWakeSlotSize];
  std::atomic<bool> wake_pending_{false};
  // Pushes that found the queue empty and have finished waking the loop; every batch the
  // loop takes (loop thread) began with one of them.
  std::atomic<std::uint64_t> first_push_wakes_{0};
  std::uint64_t batches_taken_ = 0;
  // What is left of a batch, oldest first.
  Command* unfinished_batch_ = nullptr;
  std::chrono::steady_clock::time_point batch_clock_{};  // when the last command's scope ended
  bool batch_clock_valid_ = false;                        // it ended the command just run
  bool batch_clock_armed_ = false;                        // the next command's scope may start from it
};

}  // namespace loopbridge::detail

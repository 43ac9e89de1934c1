#pragma once

#include <loopbridge/loop/detail/command.hpp>

#include <atomic>
#include <cstddef>

namespace loopbridge::detail {

/// The loop's one multi-producer, single-consumer command queue.
///
/// Producers push with one CAS; the consumer takes the whole batch with one exchange and
/// runs it oldest first, so commands from one thread run in the order they were pushed. A
/// push that finds the queue empty tells the caller to wake the loop; every other push
/// rides on a wake-up already on its way. Closing is atomic with pushing: after close(), a
/// push fails and the caller still owns its command.
class CommandQueue {
public:
  enum class PushResult { pushed, pushed_first, closed };

  PushResult push(Command& command) noexcept;
  /// Takes every queued command, oldest first (a list linked by next_in_queue).
  Command* take_all() noexcept;
  /// Closes the queue and takes what was left, oldest first.
  Command* close() noexcept;
  bool closed() const noexcept;
  /// True when commands wait (a cheap read, for spinning).
  bool has_commands() const noexcept;

  /// Commands pushed and not yet started.
  std::size_t depth() const noexcept {
    // Read ran_ first: pushed_ can only have grown since, so the difference never wraps.
    std::size_t ran = ran_.load(std::memory_order_relaxed);
    std::size_t pushed = pushed_.load(std::memory_order_relaxed);
    return pushed > ran ? pushed - ran : 0;
  }
  /// The consumer counts each command as it starts it (the only writer: no RMW).
  void ran_one() noexcept { ran_.store(ran_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

private:
  // Both written by every push, so they share its cache line: a producer that takes the
  // line for one has it for the other.
  alignas(64) std::atomic<Command*> head_{nullptr};
  std::atomic<std::size_t> pushed_{0};
  alignas(64) std::atomic<std::size_t> ran_{0};
};

}  // namespace loopbridge::detail

#pragma once

#include <loopbridge/loop/detail/command.hpp>
#include <loopbridge/loop/detail/ref.hpp>
#include <loopbridge/loop/detail/task.hpp>
#include <loopbridge/loop/detail/task_state.hpp>
#include <loopbridge/loop/stats.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace loopbridge::detail {

/// The state behind a cancel_all() handle: the command that starts it, and what it waits
/// for.
class CancelAllState final : public TypedState<std::size_t>, public Command {
public:
  void execute(Engine& engine) noexcept override;
  void discard(Engine& engine) noexcept override;

  std::size_t cancelled = 0;
  std::size_t remaining = 0;
  std::uint64_t last_seq = 0;
};

/// The state behind an in_flight() handle: a list built on the loop thread.
class InFlightQuery final : public TypedState<std::vector<TaskInfo>>, public Command {
public:
  void execute(Engine& engine) noexcept override;
  void discard(Engine& engine) noexcept override;
};

/// The coroutine tasks a loop has started and not yet seen end, oldest first, and the
/// cancel_all() groups waiting for some of them to end. Loop thread only.
class InFlight {
public:
  bool empty() const noexcept { return head_ == nullptr; }
  TaskBase* first() const noexcept { return head_; }
  /// Numbers the task in start order and appends it.
  void link(TaskBase& task) noexcept;
  void unlink(TaskBase& task) noexcept;
  std::size_t count() const noexcept;

  /// Cancels every task in flight through `deliver` (true: it cancelled that task, false: an
  /// earlier cancel had); the group settles once those still unwinding afterwards have left
  /// (task_left), with how many this call cancelled.
  template <class Deliver>
  void cancel_all(CancelAllState& group, Deliver deliver) noexcept {
    std::size_t count = 0;
    for (TaskBase* task = head_; task != nullptr;) {
      TaskBase* next = task->next_in_flight;  // a cancel may end the task synchronously
      if (deliver(*task)) ++count;
      task = next;
    }
    watch(group, count);
  }
  /// A task left: groups waiting for it count down, and settle at zero.
  void task_left(const TaskBase& task) noexcept;
  /// At the stop's end: groups still waiting settle with what they cancelled.
  void settle_groups() noexcept;

  /// What `task` is, for the in-flight list and the shutdown report.
  static TaskInfo describe(const TaskBase& task, std::chrono::steady_clock::time_point now);
  std::vector<TaskInfo> snapshot(std::chrono::steady_clock::time_point now) const;

private:
  void watch(CancelAllState& group, std::size_t cancelled) noexcept;

  TaskBase* head_ = nullptr;
  TaskBase* tail_ = nullptr;
  std::uint64_t next_seq_ = 0;
  std::vector<Ref<CancelAllState>> groups_;
};

}  // namespace loopbridge::detail

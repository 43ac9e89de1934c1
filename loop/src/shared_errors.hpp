#pragma once

#include <loopbridge/loop/errors.hpp>

#include <array>
#include <cstddef>
#include <exception>
#include <string>

namespace loopbridge::detail {

/// What a task that `cause` cancelled settles with: before it started, or while it ran.
inline TaskCancelled cancellation(CancelCause cause, bool while_running) {
  return TaskCancelled(cause, std::string("task cancelled by ") + to_string(cause) +
                                  (while_running ? " while it ran" : " before it started"));
}

/// The errors a loop settles many tasks with, each made once and shared by all of them: a
/// stop may settle millions, and each make_exception_ptr allocates and formats a message.
/// Loop thread only. Out of memory, the bad_alloc is what is shared.
class SharedErrors {
public:
  /// A task the stop settled before it started.
  const std::exception_ptr& cancelled_before_start_by_stop() noexcept {
    return made(cancelled_before_start_, [] { return cancellation(CancelCause::stop, /*while_running=*/false); });
  }
  /// A task that `cause` cancelled while it ran.
  const std::exception_ptr& cancelled_while_running(CancelCause cause) noexcept {
    return made(cancelled_while_running_[static_cast<std::size_t>(cause)],
                [cause] { return cancellation(cause, /*while_running=*/true); });
  }
  /// A task the stop dropped (StopOptions::drop_in_flight).
  const std::exception_ptr& dropped() noexcept {
    return made(dropped_, [] {
      return TaskCancelled(CancelCause::stop,
                           "task dropped by the loop's stop: its frame was destroyed without resuming");
    });
  }
  /// A task still running at the stop's cancel deadline.
  const std::exception_ptr& abandoned() noexcept {
    return made(abandoned_, [] {
      return TaskAbandoned("task abandoned: it did not finish unwinding before the stop's cancel deadline");
    });
  }

private:
  template <class Make>
  static const std::exception_ptr& made(std::exception_ptr& slot, Make make) noexcept {
    if (!slot) {
      try {
        slot = std::make_exception_ptr(make());
      } catch (...) {
        slot = std::current_exception();
      }
    }
    return slot;
  }

  std::exception_ptr cancelled_before_start_;
  std::array<std::exception_ptr, 5> cancelled_while_running_;  // by CancelCause
  std::exception_ptr dropped_;
  std::exception_ptr abandoned_;
};

}  // namespace loopbridge::detail

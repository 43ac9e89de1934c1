#pragma once

#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/stats.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>

namespace loopbridge::detail {

/// Where a loop is in its life. The host thread that starts the loop moves it out of
/// `created`; from there on the loop thread alone moves it, down this list, once. A stop
/// request (any thread) closes the loop's door at once and is recorded in Latches; the loop
/// acts on it at its next command.
enum class Phase : std::uint8_t {
  created,         ///< made; nothing runs; submissions throw InvalidState
  starting,        ///< on_thread_start and the on_start hooks run; submissions are taken
  running,         ///< the loop takes work
  stop_hooks,      ///< the stop began: the on_stop hooks run, in reverse
  draining,        ///< tasks in flight may finish (StopOptions::drain_timeout)
  cancelling,      ///< they are cancelled and given cancel_timeout to unwind; then abandoned
  settling_waits,  ///< coroutines waiting on other loops' tasks are detached from them
  closed,          ///< the queue is closed and every handle has settled; the thread ends
  stopped,         ///< the thread has ended (or never existed)
};

/// One step of the stop, and the longest it may take.
struct StopStep {
  Phase phase;
  std::chrono::nanoseconds (*allowance)(const StopOptions& options, std::size_t stop_hooks) noexcept;
};

/// How long the stop gives coroutines waiting on other loops to be detached (settling_waits).
inline constexpr std::chrono::seconds kSettleWaitsLimit{1};

/// The steps a stop walks, in order: the stop sequence runs them from this list, and a stop's
/// budget is made from it, so that a step cannot be added to one and not the other.
extern const StopStep kStopSteps[4];

/// The longest the stop steps may take, all together, with `options`.
std::chrono::nanoseconds stop_steps_allowance(const StopOptions& options, std::size_t stop_hooks) noexcept;

/// What the host threads and the loop thread tell each other about the start and the stop,
/// and what a stop hands back to its callers (ShutdownReport). Host threads wait on its
/// latches; its mutex is held only to read or change its fields.
class Latches {
public:
  // ---- the start ----
  void open_started() noexcept { open(started_); }
  bool started() const noexcept { return started_.load(std::memory_order_acquire); }
  void set_start_error(std::exception_ptr error) noexcept;
  /// Host thread: waits until the start ended either way (started, or the thread finished
  /// after a failed start); returns the start's error, null when it succeeded.
  std::exception_ptr wait_start_outcome();

  // ---- the stop ----
  /// Records the first stop request and its options; false if one was recorded already.
  bool request_stop(const StopOptions& options) noexcept;
  bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_acquire); }
  /// The first request's options (default ones if the stop came from a failed start).
  StopOptions requested_stop() const;
  void add_hook_error(std::exception_ptr error) noexcept;
  /// The first `limit` tasks that the stop abandoned, for ShutdownReport::abandoned_tasks.
  void list_abandoned(std::vector<TaskInfo> tasks, std::size_t limit) noexcept;

  // ---- the end ----
  /// The loop thread is done: every handle settled. Records the stop's duration.
  void open_finished() noexcept;
  bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
  /// Host thread: waits for open_finished() until `deadline`; true if it came.
  bool wait_finished(std::chrono::steady_clock::time_point deadline);

  /// Hook errors, abandoned tasks and the stop's duration.
  void fill(ShutdownReport& report) const;

private:
  void open(std::atomic<bool>& flag) noexcept;
  bool wait(const std::atomic<bool>& flag, std::chrono::steady_clock::time_point deadline);

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> started_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> stop_requested_{false};
  std::exception_ptr start_error_;
  StopOptions requested_stop_;
  std::chrono::steady_clock::time_point stop_requested_at_{};
  std::chrono::nanoseconds stop_duration_{0};
  std::vector<std::exception_ptr> hook_errors_;
  std::vector<TaskInfo> abandoned_tasks_;
};

}  // namespace loopbridge::detail

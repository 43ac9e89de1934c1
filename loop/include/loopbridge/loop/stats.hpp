#pragma once

#include <loopbridge/loop/source_location.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

/// @file
/// What a loop reports about itself: counters (LoopStats), the tasks in flight (TaskInfo)
/// and handlers that blocked its thread (StallReport). docs/operations.md shows them in use.

namespace loopbridge {

/// A snapshot of a loop's counters, read with LoopHandle::stats().
/**
 * Every count covers the loop's whole life. Each field is read without a lock, so while
 * work is moving the fields may be a few operations apart; when the loop is idle or
 * stopped they reconcile exactly:
 * `submitted == completed + failed + cancelled + rejected + abandoned + in_flight`.
 */
struct LoopStats {
  std::uint64_t submitted = 0;  ///< submit() and post() calls that reached the loop's door
  std::uint64_t completed = 0;  ///< finished with a value
  std::uint64_t failed = 0;     ///< finished with an exception of their own
  std::uint64_t cancelled = 0;  ///< ended by a cancel (cancel(), cancel_all(), a stop token, stop)
  std::uint64_t rejected = 0;   ///< refused: the loop was stopping or stopped, or its queue was full
  std::uint64_t rejected_full = 0;  ///< the part of `rejected` refused because the queue was full
  std::uint64_t abandoned = 0;  ///< still running at the stop's cancel deadline
  std::uint64_t in_flight = 0;  ///< accepted and not ended: `queued` plus those running
  std::uint64_t queued = 0;     ///< accepted, waiting in the queue to start
  std::uint64_t running = 0;    ///< started and not ended (`in_flight - queued`)
  std::size_t queue_depth = 0;  ///< every command in the queue (submissions, cancels, stop)
  std::uint64_t errors_reported = 0;  ///< errors sent to the error handler
  std::uint64_t stalls = 0;     ///< handlers that ran past LoopOptions::stall_threshold
  /// Submit-to-start lag: from the submit() call to the moment the loop thread started the
  /// task. Percentiles come from a log-scale histogram (within 1/8 of the true value); the
  /// maximum is exact.
  ///@{
  std::chrono::nanoseconds lag_p50{0}, lag_p99{0}, lag_max{0};
  ///@}
  /// The longest the loop thread ran one piece of loopbridge work without returning to its
  /// event loop: a callable, or one stretch of a task's coroutine between suspensions.
  std::chrono::nanoseconds longest_handler{0};
  /// Since start(); zero before it.
  std::chrono::nanoseconds uptime{0};
};

/// Where a task in flight is.
enum class TaskPhase {
  running,     ///< started; a coroutine between suspensions counts as running
  cancelling,  ///< a cancel was delivered and it has not unwound yet
};

/// One task in flight, as listed by LoopHandle::in_flight() and ShutdownReport.
struct TaskInfo {
  std::string name;             ///< SubmitOptions::name; empty if none was given
  TaskPhase phase = TaskPhase::running;  ///< running, or cancelling
  std::chrono::nanoseconds age{0};  ///< since its submit() call
  source_location where;   ///< the submit() call that made it
  std::uint64_t id = 0;         ///< the loop's start order

  /// One line: `name (file:line, age 12 ms, running)`.
  std::string to_string() const;
};

/// A handler that kept the loop thread from its event loop for too long (asyncio's
/// slow_callback_duration warning).
struct StallReport {
  std::string loop;        ///< the loop's name
  std::string task;        ///< the running task's name (SubmitOptions::name); "(unnamed)" if it has none
  source_location where;  ///< the submit() call of that task
  std::chrono::nanoseconds duration{0};  ///< how long that one stretch ran
};

/// Receives stall reports on the loop thread right after the stall ended; must not block
/// or throw (what it throws goes to the error handler).
using StallHandler = std::function<void(const StallReport& report)>;

}  // namespace loopbridge

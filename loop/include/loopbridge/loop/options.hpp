#pragma once

#include <loopbridge/loop/stats.hpp>
#include <loopbridge/loop/stop_token.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loopbridge {

/// Receives every error that has no future to go to: exceptions from fire-and-forget posts,
/// posts refused by a stopping loop, errors raised by a task while it was being cancelled,
/// exceptions thrown by on_settled callbacks, on_stop hook errors when the destructor stops
/// the loop. Called on the thread where the
/// error surfaced (usually the loop thread); it must not throw (what it throws is dropped).
using ErrorHandler = std::function<void(std::exception_ptr error, std::string_view context)>;

/// Replaces the process-wide error handler: the one used by loops whose
/// LoopOptions::error_handler is empty. An empty `handler` restores the default (a line on
/// stderr). Returns the previous one. Thread safety: safe from any thread; a loop reporting
/// at the same moment uses either the old or the new handler.
ErrorHandler set_error_handler(ErrorHandler handler);

/// What a submission does when the loop's queue is at LoopOptions::queue_capacity.
enum class QueueFullPolicy {
  fail,  ///< throw QueueFull at once
  wait,  ///< wait for room up to the deadline, then throw QueueFull
};

/// Per-call choices for submit() and post().
struct SubmitOptions {
  /// Shown in stall reports, the in-flight list and the shutdown report.
  std::string name{};
#if LOOPBRIDGE_HAS_STOP_TOKEN
  /// A stop request on this token cancels the task as cancel() does. Only where the standard
  /// library has std::stop_token (see stop_token.hpp).
  std::stop_token stop{};
#endif
  /// Overrides LoopOptions::when_full for this call.
  std::optional<QueueFullPolicy> when_full{};
  /// Overrides LoopOptions::full_wait for this call (the QueueFullPolicy::wait deadline).
  std::optional<std::chrono::nanoseconds> full_wait{};
};

/// How stop() treats work still in flight. See docs/lifecycle.md. Any of the timeouts may
/// be `nanoseconds::max()`: no limit (stop() then waits as long as that step takes).
struct StopOptions {
  /// How long in-flight tasks may go on running before they are cancelled. Zero cancels at
  /// once.
  std::chrono::nanoseconds drain_timeout{0};
  /// How long cancelled tasks have to unwind before they are abandoned.
  std::chrono::nanoseconds cancel_timeout{std::chrono::seconds(5)};
  /// How long each on_stop hook may run before it is cancelled (then it has cancel_timeout
  /// to unwind).
  std::chrono::nanoseconds hook_timeout{std::chrono::seconds(5)};
  /// Tokio's runtime drop instead of asyncio's cancel-and-unwind. When set, the coroutines
  /// still in flight after the drain are not resumed: their frames are destroyed on the
  /// loop thread (the destructors of their locals run; no code after their suspension point
  /// does) and their handles settle with TaskCancelled. Much cheaper for many parked tasks
  /// (no exception per task); use it when tasks need no orderly unwinding (no cleanup in
  /// catch blocks, no co_await during cleanup). cancel_timeout then only bounds the wait
  /// for to_thread and call_host functions still running: a frame they may use is
  /// destroyed once they return (kept for good past the deadline, never freed under them). A loop
  /// on a borrowed io_context cannot destroy what waits in it: there the tasks are
  /// cancelled and unwound as without this option.
  bool drop_in_flight = false;
};

/// How a BackgroundLoop is set up.
struct LoopOptions {
  /// The loop's name: any length, not empty, no NUL. loopbridge uses the whole name wherever
  /// it names the loop (name(), stall reports, the error handler's stderr line). The loop
  /// thread's system name (/proc/self/task/N/comm, top, debuggers) is its first 15 bytes,
  /// the Linux limit, cut so as not to split a UTF-8 character; its to_thread workers are
  /// named the same way, with "-w" at the end.
  std::string name = "loopbridge";
  /// How long the on_start hooks may take, all together, before start() cancels them and
  /// throws Timeout. Must be positive.
  std::chrono::nanoseconds start_timeout{std::chrono::seconds(30)};
  /// The deadlines the destructor stops with.
  StopOptions destructor_stop{};
  /// Low-latency mode, off by default. Above zero, a host thread waiting on a TaskHandle
  /// spins for up to this long before it sleeps, and the loop thread, after a batch of
  /// commands, spins as long for the next one before it goes back to its other work and,
  /// when idle, to sleep. Trades CPU for latency: a sleeping wake across CPUs costs tens
  /// of microseconds. Leave it off on machines with fewer cores than busy threads. At most
  /// 10 ms (the loop's timers wait while it spins); the constructor throws InvalidArgument
  /// for a negative value or a larger one.
  std::chrono::nanoseconds spin_before_sleep{0};
  /// The most threads the loop's pool for blocking work (to_thread) starts, on demand.
  std::size_t worker_threads = 4;
  /// Where errors without a future go. Empty: the process-wide handler (set_error_handler;
  /// by default a line on stderr). Either way they are counted (LoopStats::errors_reported).
  ErrorHandler error_handler{};

  /// Backpressure, off by default. Above zero, at most this many submissions wait in the
  /// queue to start; one more is refused with QueueFull or waits, as `when_full` says.
  /// Cancels, cancel_all and stop are never refused. A submission made on the loop's own
  /// thread never waits (it would wait on itself): it fails at once.
  std::size_t queue_capacity = 0;
  /// What a submission does when the queue is full; SubmitOptions can override it per call.
  QueueFullPolicy when_full = QueueFullPolicy::fail;
  /// How long QueueFullPolicy::wait waits for room.
  std::chrono::nanoseconds full_wait{std::chrono::seconds(1)};

  /// Stall detection (asyncio's slow_callback_duration): a callable, or one stretch of a
  /// coroutine between suspensions, that keeps the loop thread longer than this is reported
  /// to `stall_handler` once it returns. Zero turns it off.
  std::chrono::nanoseconds stall_threshold{std::chrono::milliseconds(100)};
  /// Receives stall reports. Empty: a warning line on stderr.
  StallHandler stall_handler{};

  // ---- The loop's own thread (start() creates it; run_here() refuses these) ----
  // `name` above names it too. docs/customise.md shows each in use.

  /// The CPUs the loop thread may run on (numbered as in /proc/cpuinfo). Empty: those of
  /// the thread that calls start(). A CPU that does not exist is refused by the
  /// constructor; one this process may not use (cpuset, container) by start(). Both throw
  /// InvalidArgument. Where this build cannot pin threads (platform_info().cpu_pinning is
  /// empty: the portable fallbacks), the CPUs are checked to exist and the thread runs unpinned.
  std::vector<unsigned> cpu_affinity{};
  /// The loop thread's stack size in bytes. Zero: the system's default (ulimit -s).
  /// Otherwise 64 KiB to 1 GiB, or the constructor throws InvalidArgument.
  std::size_t stack_size = 0;
  /// Runs on the new loop thread once it is named and pinned, before the on_start hooks
  /// (scheduling priority, signal mask, per-thread state of other libraries). If it throws,
  /// the loop stops and start() throws that exception. It runs on a loop thread: blocking
  /// on this loop's tasks there throws DeadlockError.
  std::function<void()> on_thread_start{};
};

/// What a stop did, and the loop's counts up to the moment the stop returned.
/**
 * A snapshot, made as stop() (or run_here()) returns: its counts cover the loop's life from
 * its construction to that moment. A submission refused after it (through a LoopHandle that
 * outlives the stop) is not in it: LoopHandle::stats() counts it in LoopStats::rejected, and
 * so does the report of any later stop() call, whose counts are read when that call returns
 * while its hook errors, abandoned tasks, duration and `joined` are the first stop's.
 */
struct ShutdownReport {
  std::uint64_t submitted = 0;  ///< tasks and posts accepted or refused, up to the report
  std::uint64_t completed = 0;  ///< finished with a value
  std::uint64_t failed = 0;     ///< finished with an exception of their own
  std::uint64_t cancelled = 0;  ///< ended by a cancel (cancel(), cancel_all(), a stop token, stop)
  std::uint64_t abandoned = 0;  ///< still running past the cancel deadline at stop
  std::uint64_t rejected = 0;   ///< refused (stopping or stopped, or queue full), up to the report
  /// Worker threads (to_thread) still running a function when the stop's cancel deadline
  /// passed: detached, they finish alone and their results are dropped.
  std::uint64_t abandoned_workers = 0;
  /// The tasks abandoned at the cancel deadline: what they were and where they came from.
  std::vector<TaskInfo> abandoned_tasks;
  /// Errors thrown by on_stop hooks (or a hook's Timeout), in the order the hooks ran.
  std::vector<std::exception_ptr> hook_errors;
  /// From the stop request to the loop thread's end.
  std::chrono::nanoseconds duration{0};
  /// True when the loop thread was joined. False when stop() ran on the loop thread itself
  /// (it only requested the stop), and when the loop thread did not end within the stop's
  /// deadlines (a callable blocking the thread): then the thread was detached and goes on
  /// alone, holding what it needs.
  bool joined = false;

  /// One human-readable line.
  std::string summary() const;
};

}  // namespace loopbridge

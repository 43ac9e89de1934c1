#pragma once

#include <loopbridge/loop/detail/deadline.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/loop_handle.hpp>
#include <loopbridge/loop/source_location.hpp>
#include <loopbridge/loop/stop_token.hpp>
#include <loopbridge/loop/task_handle.hpp>

#include <chrono>
#include <string>
#include <utility>

/// @file
/// Blocking calls from synchronous code into a loop, with a deadline (asgiref's
/// async_to_sync, anyio's BlockingPortal.call, asyncio's run_coroutine_threadsafe + result).

namespace loopbridge {

/// How run() ends a call that ran past its deadline.
struct RunOptions {
  /// How long run() waits, after its deadline cancelled the task, for the task to end. No
  /// limit by default: run() returns only once nothing of the task runs any more, so `fn`
  /// may capture the caller's locals by reference. A bounded value is an opt-in for callers
  /// that must return by then whatever the task does: past it run() throws Timeout while the
  /// task may still run, and captures by reference are then unsafe (capture by value, or
  /// own what the task uses with a shared_ptr).
  std::chrono::nanoseconds unwind_timeout = std::chrono::nanoseconds::max();
  /// While run() waits for a cancelled task, a task that has not ended this long after the
  /// cancel is reported once to the loop's error handler (a Timeout naming the task and its
  /// call site): a task that ignores its cancellation is seen, not silently waited for.
  std::chrono::nanoseconds unwind_warning{std::chrono::seconds(1)};
#if LOOPBRIDGE_HAS_STOP_TOKEN
  /// A stop request on this token cancels the call as the deadline does (std::jthread). Only
  /// where the standard library has std::stop_token (see loopbridge/loop/stop_token.hpp).
  std::stop_token stop{};
#endif
  /// The task's name in stall reports and the in-flight list.
  std::string name{};
};

namespace detail {

/// After run()'s deadline: cancels the task (cause: the deadline). False when the task had
/// settled already, or is a plain callable that has started (it runs to its end).
bool cancel_at_deadline(StateBase& state) noexcept;
/// Waits for a task that run() cancelled to end, serving the host calls of this thread's
/// tasks meanwhile. Reports once to the loop's error handler past `options.unwind_warning`.
/// Throws Timeout past `options.unwind_timeout`.
void wait_unwound(const LoopHandle& loop, const StateBase& state, const RunOptions& options,
                  const std::string& name, const source_location& where);
/// When `state` settled because the loop stopped (the task was abandoned, dropped, or
/// cancelled by the stop), what is left of the task may still run (a frame the loop thread
/// destroys at its end, a to_thread function it left running): waits until the loop has
/// ended and none of its worker functions runs, up to `options.unwind_timeout` (Timeout
/// past it). Does nothing otherwise.
void wait_released_by_stop(const LoopHandle& loop, const StateBase& state, const RunOptions& options);

}  // namespace detail

/// Runs `fn` on the loop, blocks until it settles, and returns its value (or rethrows its
/// exception with its original type).
/**
 * When `deadline` passes first, run() cancels the task (TaskCancelled::cause() is
 * CancelCause::deadline), waits until it has ended, and throws Timeout: unlike asyncio's
 * `future.result(timeout)`, nothing is left running behind the caller, so `fn` may capture
 * the caller's locals by reference. A task that ignores its cancellation holds run() as
 * long as it runs, and is reported to the loop's error handler after
 * `options.unwind_warning`; `options.unwind_timeout` bounds the wait instead, at the price
 * of that guarantee. A value that arrives together with the deadline is returned, and so is
 * the outcome of a plain callable that was already running (a cancel cannot stop it) and
 * then ran to its end.
 *
 * When the loop stops during the call, run() rethrows what the stop settled the task with
 * (TaskCancelled, TaskAbandoned) once nothing of the task runs any more: a task abandoned at
 * the stop's deadline leaves its frame to the loop thread's end and perhaps a to_thread
 * function running, and run() waits for those too.
 *
 * While it waits, the calling thread runs the task's call_host() requests (asgiref's
 * thread-sensitive mode); those may call run() again.
 *
 * Safe to call inside a `catch` block: the exception being handled is never rethrown.
 *
 * @par Thread safety
 * Any host thread, any number at once.
 *
 * @par After stop
 * Throws LoopStopped at once; a stop during the call settles it (TaskCancelled or
 * TaskAbandoned is rethrown, as above).
 *
 * @par Throws
 * DeadlockError on a loop thread (any loop: a wait cycle across loops cannot form);
 * LoopStopped at once when the loop is stopping or stopped, InvalidState before start;
 * InvalidArgument for a negative unwind_timeout or unwind_warning; Timeout as above;
 * TaskCancelled when something else cancelled the task (or `options.stop` was requested);
 * the task's own exception.
 */
template <class F>
task_result_t<F> run(const LoopHandle& loop, F&& fn, std::chrono::steady_clock::time_point deadline,
                     RunOptions options = {}, source_location where = source_location::current()) {
  detail::check_may_block("loopbridge::run");
  if (options.unwind_timeout < std::chrono::nanoseconds::zero()) throw InvalidArgument("negative unwind_timeout");
  if (options.unwind_warning < std::chrono::nanoseconds::zero()) throw InvalidArgument("negative unwind_warning");
  // From here to the end of the wait, this thread takes the task's call_host() requests.
  detail::HostCallScope host_calls;
  SubmitOptions submit_options;
  submit_options.name = options.name;
#if LOOPBRIDGE_HAS_STOP_TOKEN
  submit_options.stop = options.stop;
#endif
  TaskHandle<task_result_t<F>> handle = loop.submit(std::forward<F>(fn), std::move(submit_options), where);
  detail::StateBase& state = detail::HandleAccess::state(handle);
  bool cancelled_here = false;
  if (handle.wait_until(deadline) != std::future_status::ready) {
    // False when the task settled meanwhile (perhaps cancelled by someone else: that
    // TaskCancelled stands), or is a plain callable already running: either way the wait
    // below bounds what is left.
    cancelled_here = detail::cancel_at_deadline(state);
    detail::wait_unwound(loop, state, options, options.name, where);
  }
  detail::wait_released_by_stop(loop, state, options);
  // A cancel cannot stop a callable that is already running: one that then ran to its end
  // settled with its own outcome, which stands.
  try {
    return handle.get();
  } catch (const TaskCancelled& cancelled) {
    if (!cancelled_here || cancelled.cause() != CancelCause::deadline) throw;
    throw Timeout("run(): the deadline passed; the task was cancelled and has ended");
  }
}

/// run() with a timeout instead of a deadline. Throws InvalidArgument for a timeout that is
/// not positive.
template <class F, class Rep, class Period>
task_result_t<F> run(const LoopHandle& loop, F&& fn, std::chrono::duration<Rep, Period> timeout,
                     RunOptions options = {}, source_location where = source_location::current()) {
  if (timeout <= std::chrono::duration<Rep, Period>::zero()) throw InvalidArgument("run() timeout must be positive");
  return run(loop, std::forward<F>(fn), detail::deadline_after(timeout), std::move(options), where);
}

}  // namespace loopbridge

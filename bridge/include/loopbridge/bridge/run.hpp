#pragma once

#include <loopbridge/loop/detail/call_rules.hpp>
#include <loopbridge/loop/detail/deadline.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/loop_handle.hpp>
#include <loopbridge/loop/source_location.hpp>
#include <loopbridge/loop/stop_token.hpp>
#include <loopbridge/loop/task_handle.hpp>

#include <chrono>
#include <string>
#include <type_traits>
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


/// run()'s deadline: `limit` itself, or `limit` from now (InvalidArgument unless positive).
template <class Limit>
std::chrono::steady_clock::time_point run_deadline(Limit limit) {
  if constexpr (std::is_same_v<Limit, std::chrono::steady_clock::time_point>) {
    return limit;
  } else if constexpr (requires { typename Limit::clock; }) {
    return std::chrono::time_point_cast<std::chrono::steady_clock::duration>(limit);
  } else {
    if (limit <= Limit::zero()) throw InvalidArgument("the run() timeout must be positive");
    return deadline_after(limit);
  }
}

/// run() once its values are sorted out: `fn` bound to `args`, until `deadline`.
template <class F, class... Args>
task_result_t<F, Args...> run_until(const LoopHandle& loop, std::chrono::steady_clock::time_point deadline,
                                    RunOptions options, const source_location& where, F&& fn, Args&&... args) {
  check_may_block("loopbridge::run()");
  if (options.unwind_timeout < std::chrono::nanoseconds::zero()) throw InvalidArgument("RunOptions::unwind_timeout must not be negative");
  if (options.unwind_warning < std::chrono::nanoseconds::zero()) throw InvalidArgument("RunOptions::unwind_warning must not be negative");
  // From here to the end of the wait, this thread takes the task's call_host() requests.
  HostCallScope host_calls;
  SubmitOptions submit_options;
  submit_options.name = options.name;
#if LOOPBRIDGE_HAS_STOP_TOKEN
  submit_options.stop = options.stop;
#endif
  TaskHandle<task_result_t<F, Args...>> handle =
      LoopAccess::submit(loop, where, std::move(submit_options), std::forward<F>(fn), std::forward<Args>(args)...);
  StateBase& state = HandleAccess::state(handle);
  bool cancelled_here = false;
  if (handle.wait_until(deadline) != std::future_status::ready) {
    // False when the task settled meanwhile (perhaps cancelled by someone else: that
    // TaskCancelled stands), or is a plain callable already running: either way the wait
    // below bounds what is left.
    cancelled_here = cancel_at_deadline(state);
    wait_unwound(loop, state, options, options.name, where);
  }
  wait_released_by_stop(loop, state, options);
  // A cancel cannot stop a callable that is already running: one that then ran to its end
  // settled with its own outcome, which stands.
  try {
    return handle.get();
  } catch (const TaskCancelled& cancelled) {
    if (!cancelled_here || cancelled.cause() != CancelCause::deadline) throw;
    throw Timeout("run(): the deadline passed; the task was cancelled and has ended");
  }
}

}  // namespace detail

/// Runs `fn(args...)` on the loop, blocks until it settles or `limit` passes, and returns
/// its value (or rethrows its exception with its original type).
/**
 * `limit` is a timeout (a std::chrono::duration, which must be positive) or a deadline (a
 * std::chrono::steady_clock::time_point). It always comes right after `fn`, so nothing
 * after it can be mistaken for it. The shapes of the call, with up to six values after
 * `limit`:
 * - `run(loop, fn, limit, args...)`;
 * - `run(loop, fn, limit, options, args...)`, with RunOptions for this call.
 *
 * `fn` and `args` are what LoopHandle::submit() takes, stored and passed the same way
 * (decay-copied as std::thread does; std::ref passes a reference). A call that breaks
 * these rules does not compile, and the error says what to write.
 *
 * When the deadline passes first, run() cancels the task (TaskCancelled::cause() is
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
 * InvalidArgument for a timeout that is not positive, a negative unwind_timeout or
 * unwind_warning; Timeout as above; TaskCancelled when something else cancelled the task
 * (or `options.stop` was requested); the task's own exception.
 */
template <class F, class Limit, class A1 = RunOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
          class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
auto run(const LoopHandle& loop, F&& fn, Limit limit, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {},
         A5&& a5 = {}, A6&& a6 = {}, detail::CallSite where = source_location::current()) {
  constexpr detail::Misuse misuse = !detail::is_time_limit<Limit>
                                        ? detail::Misuse::bad_time_limit
                                        : detail::task_misuse_for<F>(
                                              detail::slot_arguments_t<RunOptions, A1, A2, A3, A4, A5, A6>{});
  if constexpr (misuse != detail::Misuse::none) {
    detail::refuse<detail::Entry::run, misuse>();
    return detail::Refused{};
  } else {
    return detail::with_slots<RunOptions>(
        [&](RunOptions options, auto&&... args) {
          return detail::run_until(loop, detail::run_deadline(limit), std::move(options), where.where,
                                   std::forward<F>(fn), std::forward<decltype(args)>(args)...);
        },
        std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3), std::forward<A4>(a4), std::forward<A5>(a5),
        std::forward<A6>(a6));
  }
}

}  // namespace loopbridge

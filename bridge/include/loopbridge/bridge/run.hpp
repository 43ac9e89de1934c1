#pragma once

#include <loopbridge/loop/detail/deadline.hpp>
#include <loopbridge/loop/detail/host_waiter.hpp>
#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/loop_handle.hpp>
#include <loopbridge/loop/source_location.hpp>
#include <loopbridge/loop/task_handle.hpp>

#include <chrono>
#include <string>
#include <stop_token>
#include <utility>

/// @file
/// Blocking calls from synchronous code into a loop, with a deadline (asgiref's
/// async_to_sync, anyio's BlockingPortal.call, asyncio's run_coroutine_threadsafe + result).

namespace loopbridge {

/// How run() ends a call that ran past its deadline.
struct RunOptions {
  /// How long run() waits, after the deadline, for the cancelled task to unwind.
  std::chrono::nanoseconds unwind_timeout{std::chrono::seconds(5)};
  /// A stop request on this token cancels the call as the deadline does (std::jthread).
  std::stop_token stop{};
  /// The task's name in stall reports and the in-flight list.
  std::string name{};
};

/// Runs `fn` on the loop, blocks until it settles, and returns its value (or rethrows its
/// exception with its original type).
/**
 * When `deadline` passes first, run() cancels the task, waits up to
 * `options.unwind_timeout` for it to finish unwinding, and throws Timeout: unlike asyncio's
 * `future.result(timeout)`, nothing is left running behind the caller (unless it ignored
 * the cancellation past the unwind timeout; the message says so). A value that arrives
 * together with the deadline is returned, and so is the outcome of a plain callable that
 * was already running (a cancel cannot stop it) and then ran to its end within
 * `options.unwind_timeout`.
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
 * TaskAbandoned is rethrown).
 *
 * @par Throws
 * DeadlockError on a loop thread (any loop: a wait cycle across loops cannot form);
 * LoopStopped at once when the loop is stopping or stopped, InvalidState before start;
 * Timeout as above; TaskCancelled when something else cancelled the task (or
 * `options.stop` was requested); the task's own exception.
 */
template <class F>
task_result_t<F> run(const LoopHandle& loop, F&& fn, std::chrono::steady_clock::time_point deadline,
                     RunOptions options = {}, source_location where = source_location::current()) {
  detail::check_may_block("loopbridge::run");
  if (options.unwind_timeout < std::chrono::nanoseconds::zero()) throw InvalidArgument("negative unwind_timeout");
  // From here to the end of the wait, this thread takes the task's call_host() requests.
  const detail::Ref<detail::HostWaiter> host = detail::this_thread_host_waiter();
  detail::HostWaiter::Expecting expecting(*host);
  SubmitOptions submit_options;
  submit_options.name = std::move(options.name);
  submit_options.stop = options.stop;
  TaskHandle<task_result_t<F>> handle = loop.submit(std::forward<F>(fn), std::move(submit_options), where);
  if (handle.wait_until(deadline) == std::future_status::ready) return handle.get();
  // False when the task settled meanwhile (perhaps cancelled by someone else: that
  // TaskCancelled stands), or is a plain callable already running: either way the wait
  // below bounds what is left.
  const bool cancelled_here = handle.cancel();
  if (handle.wait_for(options.unwind_timeout) != std::future_status::ready) {
    throw Timeout("run(): the deadline passed; the task was cancelled but has not ended (still unwinding or running)");
  }
  // A cancel cannot stop a callable that is already running: one that then ran to its end
  // settled with its own outcome, which stands.
  try {
    return handle.get();
  } catch (const TaskCancelled&) {
    if (!cancelled_here) throw;
    throw Timeout("run(): the deadline passed; the task was cancelled and has unwound");
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

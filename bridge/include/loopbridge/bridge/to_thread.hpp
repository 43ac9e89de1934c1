#pragma once

#include <loopbridge/loop/detail/await.hpp>
#include <loopbridge/loop/detail/call_rules.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/handoff_call.hpp>
#include <loopbridge/loop/detail/task.hpp>
#include <loopbridge/loop/errors.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

/// @file
/// Offloading blocking work from a loop coroutine to the loop's worker threads (anyio's
/// to_thread.run_sync, asgiref's sync_to_async, asyncio's run_in_executor).

namespace loopbridge {

/// What a cancel of the coroutine awaiting to_thread() does.
struct ToThreadOptions {
  /// False (the default): the function is asked to stop (if it takes a std::stop_token) and
  /// the coroutine waits for it to return, so no orphaned work touches state the coroutine
  /// owned. True: the function is asked to stop and the coroutine resumes at once with
  /// operation_aborted; the function finishes alone and its result is dropped.
  bool abandon_on_cancel = false;
};

namespace detail {

struct RefusedByStoppedLoop {
  std::exception_ptr operator()() const {
    return std::make_exception_ptr(LoopStopped("to_thread(): the loop stopped before the function ran"));
  }
};

template <class R>
boost::asio::awaitable<R> await_offload(Ref<TypedState<R>> result, HandoffCall& job, OnCancel on_cancel) {
  auto executor = co_await boost::asio::this_coro::executor;
  if (TaskBase* task = task_of(executor)) job.context = task->context();
  if (!offload(job)) throw LoopStopped("to_thread(): the loop's worker threads have stopped");
  auto wait = await_result<R>(std::move(result), on_cancel);
  co_return co_await std::move(wait);
}

}  // namespace detail

/// Runs the blocking `fn(args...)` on one of the loop's worker threads and resumes the
/// awaiting coroutine, on the loop thread, with its result or its exception.
/**
 * `co_await to_thread(fn, args...)`, or `co_await to_thread(fn, options, args...)` with
 * ToThreadOptions, from a coroutine running on a loopbridge loop. The pool has at most
 * LoopOptions::worker_threads threads, started on demand. `fn` and `args` are stored by
 * value, decay-copied as std::thread does (std::ref passes a reference), and the arguments
 * are passed as rvalues. If `fn` accepts a `std::stop_token` before its arguments (as
 * std::jthread passes one), cancelling the awaiting task requests stop on it; see
 * ToThreadOptions for whether the coroutine then waits for `fn` to return. At stop, the
 * loop waits for running functions up to its cancel deadline and reports those it had to
 * leave behind (ShutdownReport::abandoned_workers); a function that finishes later never
 * touches the stopped loop, and the frame of a coroutine waiting on it (abandoned or
 * dropped at stop) is kept while it runs. `fn` and `args` are destroyed on the worker
 * thread. A call that breaks these rules (a coroutine function, arguments `fn` does not
 * accept) does not compile, and the error says what to write.
 *
 * Build the awaitable in its own statement (`auto op = to_thread(fn); co_await
 * std::move(op);`): g++ 12 can destroy temporaries of a co_await full-expression twice.
 *
 * @par Thread safety
 * Called from coroutines on the loop thread; `fn` runs on a worker thread, so what it
 * shares with the loop needs its own synchronisation.
 *
 * @par After stop
 * The pool is stopped with the loop: functions not yet started are refused (LoopStopped).
 *
 * @par Throws
 * InvalidState when not called on a loop thread; LoopStopped when the loop's pool has
 * stopped (or stops before `fn` ran).
 */
template <class F, class... Args>
auto to_thread(F&& fn, ToThreadOptions options, Args&&... args) {
  constexpr detail::Misuse misuse = detail::handoff_misuse<F, Args...>();
  if constexpr (misuse != detail::Misuse::none) {
    detail::refuse<detail::Entry::to_thread, misuse>();
    return detail::Refused{};
  } else {
    using Function = detail::function_type_for<F, Args...>;
    using Result = detail::handoff_result_t<Function>;
    if (detail::this_thread_engine() == nullptr) {
      throw InvalidState("to_thread() was called off a loop thread; only a coroutine running on a loop can await it");
    }
    detail::check_callable(fn);
    auto* job = new detail::HandoffState<Function, detail::RefusedByStoppedLoop>({}, std::forward<F>(fn),
                                                                                std::forward<Args>(args)...);
    auto result = detail::Ref<detail::TypedState<Result>>::adopt(job);
    return detail::await_offload<Result>(std::move(result), *job,
                                         options.abandon_on_cancel ? detail::OnCancel::stop_and_detach
                                                                   : detail::OnCancel::stop_and_wait);
  }
}

/// As to_thread(fn, ToThreadOptions{}, args...).
template <class F, class... Args>
  requires(!detail::leads_with<ToThreadOptions, Args...>)
auto to_thread(F&& fn, Args&&... args) {
  return to_thread(std::forward<F>(fn), ToThreadOptions{}, std::forward<Args>(args)...);
}

}  // namespace loopbridge

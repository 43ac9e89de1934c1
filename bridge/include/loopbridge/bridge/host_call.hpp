#pragma once

#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/await.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/handoff_call.hpp>
#include <loopbridge/loop/detail/task.hpp>
#include <loopbridge/loop/errors.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

/// @file
/// Calls from a task back into the host thread that waits for it (asgiref's
/// thread-sensitive mode: objects that only their owning thread may touch).

namespace loopbridge {

namespace detail {

struct RefusedByAbsentHost {
  std::exception_ptr operator()() const {
    return std::make_exception_ptr(HostNotWaiting("call_host(): the host thread stopped waiting before it ran the call"));
  }
};

template <class R>
boost::asio::awaitable<R> await_host_call(Ref<TypedState<R>> result, HandoffCall& call) {
  auto executor = co_await boost::asio::this_coro::executor;
  TaskBase* task = task_of(executor);
  if (task == nullptr || !task->host_waiter) throw HostNotWaiting("call_host(): this task was not submitted by a host thread");
  if (!post_to_host(*task, call)) throw HostNotWaiting("call_host(): the host thread that submitted this task is not waiting on it");
  // The host runs the call to its end: a cancel of this task waits for it.
  auto wait = await_result<R>(std::move(result), OnCancel::stop_and_wait);
  co_return co_await std::move(wait);
}

}  // namespace detail

/// Runs `fn(args...)` on the host thread that submitted the calling task, while that thread
/// is blocked waiting (run(), get(), wait_for(), ...), and resumes the task with the result.
/**
 * For objects that only their owning thread may touch (asgiref's thread-sensitive mode).
 * The host thread runs `fn` inside its blocking call, with the task's context installed;
 * `fn` may itself call run() or get() again (nesting to any depth: the loop is never
 * blocked). `fn` and `args` are stored and passed as to_thread() stores and passes them. If
 * `fn` takes a `std::stop_token` before its arguments, cancelling the task requests stop on
 * it; the task waits for `fn` to return either way. Build the awaitable in its own statement, then
 * `co_await std::move(op)`.
 *
 * @par Thread safety
 * Called from the task's coroutine on the loop thread; `fn` runs on the host thread.
 *
 * @par After stop
 * A stop cancels the task; a call already running on the host finishes first. If the
 * task is abandoned or dropped meanwhile, its frame (which `fn` may use) is kept until `fn`
 * returns, up to the stop's cancel deadline, and for good past it.
 *
 * @par Throws
 * HostNotWaiting, at once, when the task was submitted from a loop thread, or its host
 * thread is not blocked in a wait (it gave up, or has not started waiting); `fn`'s own
 * exception.
 */
template <class F, class... Args>
auto call_host(F&& fn, Args&&... args) {
  constexpr detail::Misuse misuse = detail::handoff_misuse<F, Args...>();
  if constexpr (misuse != detail::Misuse::none) {
    detail::refuse<detail::Entry::call_host, misuse>();
    return detail::Refused{};
  } else {
    using Function = detail::function_type_for<F, Args...>;
    using Result = detail::handoff_result_t<Function>;
    detail::check_callable(fn);
    auto* call = new detail::HandoffState<Function, detail::RefusedByAbsentHost>({}, std::forward<F>(fn),
                                                                               std::forward<Args>(args)...);
    auto result = detail::Ref<detail::TypedState<Result>>::adopt(call);
    return detail::await_host_call<Result>(std::move(result), *call);
  }
}

}  // namespace loopbridge

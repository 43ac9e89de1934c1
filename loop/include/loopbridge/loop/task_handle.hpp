#pragma once

#include <loopbridge/loop/detail/await.hpp>
#include <loopbridge/loop/detail/call_rules.hpp>
#include <loopbridge/loop/detail/deadline.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/task_stage.hpp>
#include <loopbridge/loop/detail/task_state.hpp>
#include <loopbridge/loop/errors.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <type_traits>
#include <utility>

namespace loopbridge {

namespace detail {
struct HandleAccess;
}

/// The result of a task submitted to a loop: a move-only future with cancellation.
/**
 * A TaskHandle settles exactly once: with the task's value, with the exception it threw
 * (rethrown with its original type), with TaskCancelled when a cancel reached it before it
 * finished, or with LoopStopped / TaskAbandoned when the loop stopped first. Every handle
 * settles: stop() and cancel_all() release threads blocked in get().
 *
 * Destroying a handle does not cancel the task (as with asyncio futures): the task runs to
 * its end and its result is dropped. Call cancel() first if that is what you want.
 *
 * @par Blocking
 * get(), wait(), wait_for() and wait_until() block the calling thread; meanwhile it runs
 * the call_host() requests of the tasks it submitted. On any loop thread they throw
 * DeadlockError at once instead: a coroutine there uses `co_await async_get()`, which
 * suspends only the coroutine.
 *
 * @par Thread safety
 * Distinct handles: safe. One handle: cancel(), ready() and the waits may be called from
 * several threads at once; get(), result(), on_settled(), assignment and destruction need
 * exclusive access.
 *
 * @par After stop
 * Every handle of a stopped loop has settled; nothing blocks. The exception is a stop that
 * had to detach a loop thread held by user code past its deadlines (report.joined false):
 * that loop's handles settle once the thread is free (docs/lifecycle.md).
 */
template <class T>
class [[nodiscard]] TaskHandle {
public:
  /// The type get() returns.
  using value_type = T;

  /// An empty handle: every call but valid() throws InvalidHandle.
  TaskHandle() noexcept = default;
  /// Takes over `other`'s task; `other` becomes empty.
  TaskHandle(TaskHandle&& other) noexcept
      : state_(std::move(other.state_)), loop_(std::move(other.loop_)), taken_(other.taken_) {}
  /// Takes over `other`'s task (this handle's own task, if any, goes on running, as on
  /// destruction).
  TaskHandle& operator=(TaskHandle&& other) noexcept {
    if (this != &other) {
      drop_unread();
      state_ = std::move(other.state_);
      loop_ = std::move(other.loop_);
      taken_ = other.taken_;
    }
    return *this;
  }
  TaskHandle(const TaskHandle&) = delete;
  TaskHandle& operator=(const TaskHandle&) = delete;
  /// Does not cancel the task (it runs on; its value is dropped). If the task fails with an
  /// exception of its own and nobody took its result, that exception goes to the loop's
  /// error handler, once (asyncio's "Task exception was never retrieved").
  ~TaskHandle() { drop_unread(); }

  /// False for an empty handle: default-constructed, moved from, or already taken by
  /// get(), result() or on_settled().
  bool valid() const noexcept { return state_ && !taken_; }

  /// True once the task has settled. Never blocks.
  bool ready() const { return checked().ready(); }

  /// Blocks until the task settles. Throws DeadlockError on a loop thread; LoopStopped in a
  /// fork() child for a task of a loop its parent started (that loop's thread is not here).
  void wait() const {
    check_may_wait();
    checked().wait(spin());
  }

  /// Blocks until the task settles or `timeout` passes; never cancels anything. A timeout
  /// too large for the clock (`seconds::max()`, say) waits without limit.
  /// Throws DeadlockError on a loop thread, InvalidArgument for a negative timeout.
  template <class Rep, class Period>
  std::future_status wait_for(std::chrono::duration<Rep, Period> timeout) const {
    if (timeout < std::chrono::duration<Rep, Period>::zero()) throw InvalidArgument("the wait_for() timeout must not be negative");
    check_may_wait();
    return checked().wait_until(detail::deadline_after(timeout), spin()) ? std::future_status::ready
                                                                         : std::future_status::timeout;
  }

  /// Blocks until the task settles or `deadline` passes; never cancels anything. Any clock
  /// and duration: a deadline beyond what the clock's own duration holds (a coarse
  /// time_point's max()) is no limit; one already past only polls. Throws DeadlockError on a
  /// loop thread, InvalidArgument for a floating-point deadline that is not a number.
  template <class Clock, class Duration>
  std::future_status wait_until(std::chrono::time_point<Clock, Duration> deadline) const {
    for (;;) {
      // In long double seconds: `deadline - now` could overflow the time point's duration.
      const auto left = detail::time_left(deadline);
      if (left <= decltype(left)::zero()) return ready() ? std::future_status::ready : std::future_status::timeout;
      if (wait_for(left) == std::future_status::ready) return std::future_status::ready;
    }
  }

  /// Blocks until the task settles, then returns its value or rethrows its exception.
  /// Takes the result: the handle is empty afterwards.
  /// Throws DeadlockError on a loop thread (the handle keeps its result).
  T get() {
    wait();
    return take();
  }

  /// The result of a settled task, without blocking (asyncio's Future.result()); allowed on
  /// any thread. Throws InvalidState if the task has not settled. Takes the result.
  T result() {
    if (!ready()) throw InvalidState("result() was called on a task that has not settled");
    return take();
  }

  /// Asks the task to stop. A task that has not started yet never runs: it settles with
  /// TaskCancelled before cancel() returns, its callable destroyed on this thread first
  /// (concurrent.futures' cancel() of a pending future). The loop goes on meanwhile, so a
  /// capture's destructor may submit to the loop and wait; a stop waits for such a cancel
  /// to finish. For a running coroutine the
  /// request travels through the loop's queue and arrives as an Asio cancellation signal
  /// (its pending operation completes with operation_aborted); if the task had not finished
  /// when it arrived, it settles with TaskCancelled. As in Asio, the
  /// cancel stays in force: every later co_await of the coroutine throws operation_aborted
  /// at once until it calls `co_await this_coro::reset_cancellation_state()`.
  /// Returns false when the task had already settled, and for a plain callable that has
  /// started: it cannot be interrupted, and its outcome stands (concurrent.futures' cancel()
  /// of a running call). Never blocks; any thread.
  bool cancel() { return checked().request_cancel(CancelCause::cancel); }

  /// Cancels the task and blocks until it has finished unwinding or `deadline` passed
  /// (then `timeout`: the task is still unwinding). Throws DeadlockError on a loop thread and
  /// InvalidArgument for a deadline that is not a number, before cancelling anything.
  template <class Clock, class Duration>
  std::future_status cancel_and_wait(std::chrono::time_point<Clock, Duration> deadline) {
    detail::check_may_block("TaskHandle::cancel_and_wait()");
    (void)detail::time_left(deadline);  // refuses NaN, before the cancel
    cancel();
    return wait_until(deadline);
  }

  /// As cancel_and_wait(deadline), with a timeout from now. Throws InvalidArgument for a
  /// negative or NaN timeout, before cancelling anything.
  template <class Rep, class Period>
  std::future_status cancel_and_wait(std::chrono::duration<Rep, Period> timeout) {
    if (timeout < std::chrono::duration<Rep, Period>::zero()) throw InvalidArgument("the cancel_and_wait() timeout must not be negative");
    detail::check_may_block("TaskHandle::cancel_and_wait()");
    const auto deadline = detail::deadline_after(timeout);  // refuses NaN, before the cancel
    cancel();
    return wait_until(deadline);
  }

  /// Waits for the task without blocking the thread: an Asio asynchronous operation with
  /// signature `void(boost::system::error_code)`, usable with any completion token. The
  /// error is operation_aborted when the waiting operation itself was cancelled; otherwise
  /// the result is ready for result(). From a coroutine on a loopbridge loop the wait
  /// supports cancellation and its completion runs on that loop; from anywhere else it
  /// completes on the handler's associated executor.
  template <class CompletionToken = boost::asio::default_completion_token_t<boost::asio::any_io_executor>>
  auto async_wait(CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
        detail::InitiateWait{}, token, detail::Ref<detail::StateBase>::share(&checked()));
  }

  /// Waits for the task without blocking the thread, then delivers its value or its
  /// exception: an Asio asynchronous operation with co_spawn's completion signature,
  /// `void(std::exception_ptr, T)` (`void(std::exception_ptr)` for T = void).
  /**
   * Every completion token delivers the outcome: `co_await handle.async_get()` (the default
   * token is use_awaitable) returns the value or rethrows the exception; `use_future` gives
   * a std::future<T>; `as_tuple`, `deferred` and callbacks receive the pair. Works across
   * loops. From a coroutine on a loopbridge loop the wait supports cancellation (the
   * exception is then a system_error with operation_aborted, and the handle keeps its
   * result) and completes on that loop; from anywhere else it completes on the handler's
   * associated executor (wrap a callback with bind_executor to choose one). On success the
   * result is taken: the handle is empty afterwards, as after get(). The handle must outlive
   * the operation. With any token but use_awaitable, T must be default-constructible when
   * it is not void, as for co_spawn: the value that comes with an exception is T{}.
   *
   * The exception is DeadlockError when the awaiting code runs as the task itself (its
   * coroutine, or one it co_spawned on its executor): the task would wait for its own end
   * (asyncio's "Task cannot await on itself").
   *
   * @par Thread safety
   * As get(): one waiter per handle.
   *
   * @par After stop
   * The stop settles the task (LoopStopped, TaskCancelled or TaskAbandoned), and that is
   * the exception delivered.
   */
  template <class CompletionToken = boost::asio::use_awaitable_t<>>
  auto async_get(CompletionToken&& token = {}) {
    constexpr bool awaited = std::is_same_v<std::decay_t<CompletionToken>, boost::asio::use_awaitable_t<>>;
    if constexpr (!std::is_void_v<T> && !std::is_default_constructible_v<T> && awaited) {
      return await_value();
    } else if constexpr (!std::is_void_v<T> && !std::is_default_constructible_v<T>) {
      static_assert(awaited, "loopbridge: async_get() delivers T{} alongside an exception, as co_spawn does, so with "
                             "any token but use_awaitable T must be default-constructible: co_await "
                             "handle.async_get(), or wait with async_wait(token) and read the outcome with result()");
      return detail::Refused{};
    } else {
      detail::StateBase& state = checked();
      return boost::asio::async_compose<CompletionToken, detail::get_signature_t<T>>(
          GetOperation{this, detail::Ref<detail::StateBase>::share(&state)}, token);
    }
  }

  /// Calls `fn(TaskHandle<T>&& settled)` once the task settles, on the thread that settles
  /// it (usually the loop thread: fn must not block), or at once on this thread if it has
  /// settled already. Consumes the handle (not when it throws InvalidState because another
  /// wait is registered on the task: the handle stays as it was); `settled.result()` reads
  /// the outcome. What fn
  /// throws goes to the loop's error handler (LoopOptions::error_handler), as asyncio logs an
  /// exception raised in a done callback; it is counted in unhandled_errors().
  template <class Fn>
  void on_settled(Fn&& fn) && {
    constexpr detail::Misuse misuse = detail::settled_callback_misuse<Fn, TaskHandle>();
    if constexpr (misuse != detail::Misuse::none) {
      detail::refuse<detail::Entry::on_settled, misuse>();
    } else {
      detail::StateBase& state = checked();
      detail::Ref<detail::Engine> loop = loop_;
      detail::SettledCallback<TaskHandle, std::decay_t<Fn>>::start(state, *this, std::forward<Fn>(fn), std::move(loop));
    }
  }

  /// Internal: wraps a task's state; `loop` is kept alive for cancel(), and its
  /// LoopOptions::spin_before_sleep says how long waits spin before sleeping.
  TaskHandle(detail::Ref<detail::TypedState<T>> state, detail::Ref<detail::Engine> loop) noexcept
      : state_(std::move(state)), loop_(std::move(loop)) {}

private:
  friend struct detail::HandleAccess;

  /// async_get() under use_awaitable for a T that cannot be default-constructed: no value
  /// comes with an exception, which the coroutine rethrows.
  boost::asio::awaitable<T> await_value() {
    detail::StateBase& state = checked();
    if (detail::is_task_state(detail::task_of(co_await boost::asio::this_coro::executor), state)) {
      throw DeadlockError("a task awaited its own handle: it would wait for its own end");
    }
    auto wait_op = async_wait(boost::asio::use_awaitable);
    co_await std::move(wait_op);
    co_return take();
  }

  /// async_get()'s steps: refuse a task awaiting itself, wait, deliver the outcome.
  struct GetOperation {
    TaskHandle* handle;
    detail::Ref<detail::StateBase> state;
    bool waited = false;

    template <class Self>
    void operator()(Self& self, boost::system::error_code error = {}) {
      if (!waited) {
        waited = true;
        if (detail::is_task_state(detail::task_of(boost::asio::get_associated_executor(self)), *state)) {
          deliver(self, std::make_exception_ptr(DeadlockError("a task awaited its own handle: it would wait for its own end")));
          return;
        }
        detail::Ref<detail::StateBase> awaited = state;
        detail::InitiateWait{}(std::move(self), std::move(awaited));
        return;
      }
      if (error) {
        deliver(self, std::make_exception_ptr(boost::system::system_error(error)));
        return;
      }
      std::exception_ptr failure;
      if constexpr (std::is_void_v<T>) {
        try {
          handle->take();
        } catch (...) {
          failure = std::current_exception();
        }
        self.complete(failure);
      } else {
        std::optional<T> value;
        try {
          value.emplace(handle->take());
        } catch (...) {
          failure = std::current_exception();
        }
        if (failure) {
          deliver(self, failure);
        } else {
          self.complete(std::exception_ptr(), std::move(*value));
        }
      }
    }

    template <class Self>
    static void deliver(Self& self, std::exception_ptr failure) {
      if constexpr (std::is_void_v<T>) {
        self.complete(std::move(failure));
      } else {
        self.complete(std::move(failure), T{});
      }
    }
  };

  detail::TypedState<T>& checked() const {
    if (!state_) throw InvalidHandle("the TaskHandle is empty (default-constructed or moved from)");
    if (taken_) throw InvalidHandle("the TaskHandle's result was already taken");
    return *state_;
  }

  T take() {
    detail::TypedState<T>& state = checked();
    taken_ = true;
    return state.take();
  }

  void check_may_wait() const {
    if (detail::g_forked_child.load(std::memory_order_relaxed) && !checked().ready()) {
      detail::check_loop_not_forked_away(loop_.get());
    }
  }

  void drop_unread() noexcept {
    if (state_ && !taken_) state_->handle_dropped();
  }

  // Read from the loop at each wait rather than kept here: every handle a host holds while
  // its task is pending costs its size.
  std::chrono::nanoseconds spin() const noexcept { return detail::spin_before_sleep(*loop_); }

  detail::Ref<detail::TypedState<T>> state_;
  detail::Ref<detail::Engine> loop_;
  bool taken_ = false;
};

}  // namespace loopbridge

namespace loopbridge::detail {

/// For the bridge: the state behind a handle.
struct HandleAccess {
  template <class T>
  static TypedState<T>& state(const TaskHandle<T>& handle) {
    return handle.checked();
  }
};

}  // namespace loopbridge::detail

#pragma once

#include <loopbridge/loop/backend.hpp>
#include <loopbridge/loop/detail/call_rules.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/task.hpp>
#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/source_location.hpp>
#include <loopbridge/loop/stats.hpp>
#include <loopbridge/loop/task_handle.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>
#include <string_view>
#include <type_traits>

namespace loopbridge {

class BackgroundLoop;
class LoopPool;

namespace detail {
struct LoopAccess;
}

/// Where a loop is in its life.
enum class LoopState { created, starting, running, stopping, stopped };

/// The value type of the task that `submit(fn, args...)` makes: T for a coroutine function
/// returning `awaitable<T>`, for an `awaitable<T>` itself, and for a callable returning T.
template <class F, class... Args>
using task_result_t = typename detail::task_traits<detail::function_type_for<F, Args...>>::result;

/// A copyable reference to a BackgroundLoop, for submitting work from anywhere.
/**
 * Everything a LoopHandle does is a command on the loop's one queue. A handle keeps the
 * loop's shared state alive (not its thread): it may outlive the BackgroundLoop, and then
 * its submissions settle at once with LoopStopped.
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: safe for const calls.
 *
 * @par After stop
 * submit() returns a handle already settled with LoopStopped; post() throws LoopStopped;
 * cancel_all() returns a handle settled with 0.
 */
class LoopHandle {
public:
  /// The type of get_executor(): the loop's io_context executor.
  using executor_type = boost::asio::io_context::executor_type;

  /// An empty handle; calls throw InvalidHandle.
  LoopHandle() noexcept = default;

  /// Another handle to the same loop.
  LoopHandle(const LoopHandle&) noexcept = default;
  /// Takes over `other`'s loop; `other` becomes empty.
  LoopHandle(LoopHandle&&) noexcept = default;
  /// Refers to `other`'s loop from now on.
  LoopHandle& operator=(const LoopHandle&) noexcept = default;
  /// Takes over `other`'s loop; `other` becomes empty.
  LoopHandle& operator=(LoopHandle&&) noexcept = default;
  ~LoopHandle() = default;

  /// Runs `fn(args...)` on the loop thread and returns its result as a TaskHandle.
  /**
   * `fn` is a coroutine function returning `boost::asio::awaitable<T>` (spawned on the loop;
   * cancellable at its suspension points), a plain callable returning T (run inline on the
   * loop thread; cancellable until it starts), or an `awaitable<T>` object given alone. T
   * may be void or move-only. The result is a `TaskHandle<task_result_t<F, Args...>>`.
   *
   * The shapes of the call, with up to six values after `fn`:
   * - `submit(fn, args...)`;
   * - `submit(fn, options, args...)`, with SubmitOptions for this call (a name, a stop
   *   token, a queue-full policy): `submit(fn, {.name = "poll"})`;
   * - `submit(fn, stop, args...)`, with a std::stop_token (say, from the std::jthread the
   *   host runs on): a stop request cancels the task as cancel() does, until it settles.
   *
   * `fn` and `args` are stored with the task by value, decay-copied as std::thread does
   * (std::ref passes a reference), and destroyed before the handle settles: on the loop
   * thread, or on the cancelling thread when a cancel() reaches the task before it started.
   * The arguments are passed as rvalues: a coroutine function that takes them by value owns
   * them in its frame, and one that takes them by reference refers to the task's copies,
   * which live until it ends. Commands from one thread run in the order submitted. The call
   * site (the defaulted last parameter) shows in the in-flight list and stall reports.
   *
   * A call that breaks these rules does not compile, and the error says what to write.
   *
   * @par Throws
   * InvalidArgument for an empty callable or a negative SubmitOptions::full_wait,
   * InvalidState before start(), QueueFull when the loop has a queue capacity and it is
   * full (see LoopOptions::queue_capacity; nothing was queued). A stopping or stopped loop
   * does not throw: the handle comes back settled with LoopStopped.
   */
  template <class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  auto submit(F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {}, A6&& a6 = {},
              detail::CallSite where = source_location::current()) const {
    constexpr detail::Misuse misuse =
        detail::task_misuse_for<F>(detail::slot_arguments_t<SubmitOptions, A1, A2, A3, A4, A5, A6>{});
    if constexpr (misuse != detail::Misuse::none) {
      detail::refuse<detail::Entry::submit, misuse>();
      return TaskHandle<detail::refused_for<F>>();
    } else {
      return detail::with_slots<SubmitOptions>(
          [&](SubmitOptions options, auto&&... args) {
            return submit_at(where.where, std::move(options), std::forward<F>(fn), std::forward<decltype(args)>(args)...);
          },
          std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3), std::forward<A4>(a4), std::forward<A5>(a5),
          std::forward<A6>(a6));
    }
  }

  /// Fire-and-forget: runs `fn(args...)` (as submit() does) with no handle to wait on.
  /**
   * The same shapes as submit(): `post(fn, args...)`, `post(fn, options, args...)`,
   * `post(fn, stop, args...)`. Nobody receives a result, so `fn` returns void (or is a
   * coroutine returning `awaitable<void>`): work that returns a value does not compile
   * (use submit() for it, or drop the value in a lambda). An exception it throws goes to
   * the loop's error handler (LoopOptions::error_handler; by default printed to stderr) and
   * is counted; never lost, never std::terminate. Posted work is cancelled at stop like any
   * task.
   *
   * @par Throws
   * LoopStopped when the loop no longer accepts work (so nothing vanishes silently; a post
   * that races the stop and loses is reported to the error handler), QueueFull,
   * InvalidArgument, InvalidState as submit().
   */
  template <class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  void post(F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {}, A6&& a6 = {},
            detail::CallSite where = source_location::current()) const {
    constexpr detail::Misuse misuse =
        detail::post_misuse_for<F>(detail::slot_arguments_t<SubmitOptions, A1, A2, A3, A4, A5, A6>{});
    if constexpr (misuse != detail::Misuse::none) {
      detail::refuse<detail::Entry::post, misuse>();
    } else {
      detail::with_slots<SubmitOptions>(
          [&](SubmitOptions options, auto&&... args) {
            post_at(where.where, std::move(options), std::forward<F>(fn), std::forward<decltype(args)>(args)...);
          },
          std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3), std::forward<A4>(a4), std::forward<A5>(a5),
          std::forward<A6>(a6));
    }
  }

  /// Cancels every task in flight on the loop; the handle settles, once all of them have
  /// finished unwinding, with how many this call cancelled: a task that an earlier cancel(),
  /// cancel_all(), stop token or stop had reached is waited for but not counted again. So
  /// the counts of all calls add up to the tasks that settled with CancelCause::cancel_all,
  /// each also counted once in LoopStats::cancelled. Tasks submitted after it are untouched.
  [[nodiscard]] TaskHandle<std::size_t> cancel_all() const;

  /// The loop's executor, for Asio code that runs on the loop thread (timers, sockets,
  /// co_spawn), named as Asio's I/O objects name theirs. Valid until the loop has stopped;
  /// work posted to it directly is not tracked by loopbridge (prefer submit()).
  executor_type get_executor() const;

  /// The tasks in flight (started and not ended), oldest first: name, phase, age and the
  /// submit() call that made them. Built on the loop thread: the handle settles once the
  /// loop gets to it (after everything queued before it has started), with an empty list
  /// if the loop stopped first.
  [[nodiscard]] TaskHandle<std::vector<TaskInfo>> in_flight() const;

  /// The loop's counters; cheap, takes no lock, callable from any thread at any time (also
  /// after stop). See LoopStats for how they reconcile.
  LoopStats stats() const;

  /// Asks the loop to stop with `options`, without waiting (asyncio's loop.stop()): from
  /// any thread, the loop's own included. The owner's stop() or destructor still joins the
  /// thread; a later stop() returns this stop's report. Ignored once a stop was requested.
  /// @par Throws
  /// InvalidArgument for a negative deadline in `options` (nothing is requested then).
  void request_stop(StopOptions options = {}) const;

  /// Waits until the loop has stopped (every handle settled, its thread finished), up to
  /// `timeout`; true if it did. A loop never started counts as stopped only once stop() ran.
  /// A timeout too large for the clock (`hours::max()`) waits without limit.
  /// @par Throws
  /// DeadlockError on a loop thread; InvalidArgument for a negative timeout or one that is
  /// not a number.
  template <class Rep, class Period>
  bool wait_stopped(std::chrono::duration<Rep, Period> timeout) const {
    if (timeout < std::chrono::duration<Rep, Period>::zero()) throw InvalidArgument("the wait_stopped() timeout must not be negative");
    return wait_stopped_until(detail::deadline_after(timeout));
  }

  /// A process-wide number given at creation, increasing: tells which loops were made after
  /// a point in time (test hygiene, diagnostics).
  std::uint64_t id() const;

  /// Where the loop is in its life (docs/lifecycle.md).
  LoopState state() const;
  /// Commands waiting in the queue (submissions, cancels, stop) not yet run by the loop.
  std::size_t queue_depth() const;
  /// Errors sent to the error handler so far.
  std::uint64_t unhandled_errors() const;
  /// LoopOptions::name, whole (the thread's system name is its first 15 bytes).
  std::string_view name() const;
  /// The I/O backend this loop's io_context runs on (fixed when loopbridge is built; see
  /// IoBackend).
  IoBackend backend() const;
  /// True when called on this loop's thread.
  bool on_loop_thread() const noexcept { return core_ && detail::this_thread_engine() == core_.get(); }

  /// False for an empty handle.
  explicit operator bool() const noexcept { return static_cast<bool>(core_); }
  /// True when both refer to the same loop (or both are empty).
  friend bool operator==(const LoopHandle& a, const LoopHandle& b) noexcept { return a.core_.get() == b.core_.get(); }

private:
  friend class BackgroundLoop;
  friend std::vector<LoopHandle> live_loops();
  friend struct detail::LoopAccess;

  /// A handle to `engine`.
  explicit LoopHandle(detail::Ref<detail::Engine> engine) noexcept : core_(std::move(engine)) {}

  /// The loop's engine. Throws InvalidHandle for an empty handle.
  detail::Engine& engine() const {
    if (!core_) throw InvalidHandle("the LoopHandle is empty (default-constructed or moved from)");
    return *core_;
  }

  bool wait_stopped_until(std::chrono::steady_clock::time_point deadline) const;

  static void check_submit_options(const SubmitOptions& options);

  /// submit() once its slots are sorted out: `fn` bound to `args`.
  template <class F, class... Args>
  TaskHandle<task_result_t<F, Args...>> submit_at(const source_location& where, SubmitOptions options, F&& fn,
                                                  Args&&... args) const {
    using Result = task_result_t<F, Args...>;
    auto task = make_task(detail::TaskKind::task, options, where, std::forward<F>(fn),
                          std::forward<Args>(args)...);  // the handle's reference
    task->add_ref();                                     // the queue's
    if (!detail::submit_task(*core_, *task, options)) task->release();
    return TaskHandle<Result>(detail::Ref<detail::TypedState<Result>>(std::move(task)), core_);
  }

  /// post() once its slots are sorted out: `fn` bound to `args`.
  template <class F, class... Args>
  void post_at(const source_location& where, SubmitOptions options, F&& fn, Args&&... args) const {
    using Function = detail::function_type_for<F, Args...>;
    if constexpr (detail::task_traits<Function>::coroutine) {
      auto task = make_task(detail::TaskKind::detached, options, where, std::forward<F>(fn), std::forward<Args>(args)...);
      task->add_ref();  // the queue's
      if (!detail::submit_task(*core_, *task, options)) {
        task->release();
        detail::throw_refused(*core_);
      }
    } else {
      detail::check_callable(fn);
      check_submit_options(options);
      detail::Engine& loop = engine();
      detail::check_started(loop);
      detail::post_call(loop,
                        std::make_unique<detail::PostedCall<Function>>(
                            detail::TaskLabel{detail::TaskName(std::move(options.name)), where,
                                              std::chrono::steady_clock::now()},
                            std::forward<F>(fn), std::forward<Args>(args)...),
                        options);
    }
  }

  /// A new task with one reference, its stop token linked. Allocation failures free it.
  template <class F, class... Args>
  auto make_task(detail::TaskKind kind, SubmitOptions& options, const source_location& where, F&& fn,
                 Args&&... args) const {
    using Function = detail::function_type_for<F, Args...>;
    detail::check_callable(fn);
    check_submit_options(options);
    detail::Engine& loop = engine();
    detail::check_started(loop);
    using Task = detail::Task<task_result_t<F, Args...>, Function>;
    auto task = detail::Ref<Task>::adopt(new Task(loop, kind, std::forward<F>(fn), std::forward<Args>(args)...));
    task->set_context(detail::this_thread_context());
    task->label = detail::TaskLabel{detail::TaskName(std::move(options.name)), where, std::chrono::steady_clock::now()};
#if LOOPBRIDGE_HAS_STOP_TOKEN
    task->link_stop_token(std::move(options.stop));
#endif
    return task;
  }

  detail::Ref<detail::Engine> core_;
};

/// Every loop in the process not yet stopped (created, starting, running or stopping),
/// oldest first: for diagnostics and test hygiene (asyncio's all_tasks, one level up).
/// Thread safety: safe from any thread.
std::vector<LoopHandle> live_loops();

namespace detail {

/// For loopbridge's own parts: the engine behind a handle (InvalidHandle for an empty one),
/// a handle to an engine, and submit() with its values sorted out (run()).
struct LoopAccess {
  static Engine& engine(const LoopHandle& loop) { return loop.engine(); }
  static LoopHandle handle(Ref<Engine> engine) noexcept { return LoopHandle(std::move(engine)); }
  template <class F, class... Args>
  static TaskHandle<task_result_t<F, Args...>> submit(const LoopHandle& loop, const source_location& where,
                                                      SubmitOptions options, F&& fn, Args&&... args) {
    return loop.submit_at(where, std::move(options), std::forward<F>(fn), std::forward<Args>(args)...);
  }
};

}  // namespace detail

}  // namespace loopbridge

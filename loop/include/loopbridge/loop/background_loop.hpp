#pragma once

#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/loop_handle.hpp>
#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/task_handle.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>

namespace loopbridge {

/// A lifecycle hook: a coroutine run on the loop thread (Quart's before_serving /
/// after_serving).
using Hook = std::function<boost::asio::awaitable<void>()>;

/// Runs an Asio io_context on a dedicated, named thread owned by this object.
/**
 * The io_context is the loop's own, or one its owner hands over (the constructor taking an
 * io_context&); the loop runs on a thread start() creates, or on the caller's thread in
 * run_here(). docs/customise.md shows each choice.
 *
 * Synchronous host code (a thread-per-request server, a worker pool, a unit test) submits
 * coroutines and callables and gets TaskHandles back. Every cross-thread interaction (submit,
 * post, cancel, cancel_all, stop) is a command on one thread-safe queue drained by the loop
 * thread.
 *
 * start() returns once the loop accepts work and its on_start hooks have finished. stop()
 * (and the destructor) refuses new work, runs the on_stop hooks in reverse, optionally
 * drains, cancels what is left, abandons what does not unwind in time, and joins the thread:
 * every TaskHandle settles. docs/lifecycle.md has the table of what each step does to
 * queued work, running coroutines and pending handles.
 *
 * A BackgroundLoop answers every LoopHandle call itself (submit, post, cancel_all, ...) and
 * converts to a `const LoopHandle&`; handle() gives a copyable one to pass around. It owns
 * the thread: it is neither copied nor moved.
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: safe, all of it from any thread, except that the
 * hook registration calls belong before start(). Blocking calls (stop() that must join,
 * run_here()) made on any loop thread throw DeadlockError; stop() on this loop's own
 * thread only requests the stop. The destructor must not run on the loop thread: there it
 * requests the stop, detaches the thread and reports the misuse to the error handler.
 *
 * @par After stop
 * A stopped loop cannot be restarted (start() throws InvalidState). Submissions settle
 * with LoopStopped at once; post() throws LoopStopped.
 */
class BackgroundLoop {
public:
  /// The type of get_executor(): the loop's io_context executor.
  using executor_type = LoopHandle::executor_type;

  /// Creates the loop and its own io_context; nothing runs until start().
  /**
   * @par Throws
   * InvalidArgument for a bad name, a negative duration (or a start_timeout of zero, or a
   * spin_before_sleep above 10 ms), a CPU that does not exist or a stack size out of range; BackendUnavailable when the kernel refuses the I/O backend
   * loopbridge was built for (io_uring in a container that blocks it).
   */
  explicit BackgroundLoop(LoopOptions options = {});

  /// Creates a loop that drives `io`, an io_context its owner keeps (bring your own).
  /**
   * For Asio components created against `io` before the loop exists: once the loop runs,
   * their handlers run on the loop thread, beside the loop's tasks. Between start() and the
   * end of stop() only the loop's thread may run `io`; before start() and after stop() it
   * is its owner's again. stop() settles every handle and joins the thread as usual, then
   * leaves `io` stopped but alive, with the owner's I/O objects and their pending
   * operations intact: its owner calls `io.restart()` and runs it again. `io` must outlive
   * the loop's stop. docs/customise.md has what the owner may and may not do.
   *
   * @par Throws
   * As the other constructor.
   */
  explicit BackgroundLoop(boost::asio::io_context& io, LoopOptions options = {});

  /// Stops with LoopOptions::destructor_stop. Never throws; never waits past those
  /// deadlines (a thread still busy then is detached).
  ~BackgroundLoop();

  BackgroundLoop(const BackgroundLoop&) = delete;
  BackgroundLoop& operator=(const BackgroundLoop&) = delete;

  /// Adds a hook run by start() on the loop thread, in the order added.
  /// Throws InvalidState after start(), InvalidArgument for an empty hook.
  void on_start(Hook hook);
  /// Adds a hook run by stop() on the loop thread; on_stop hooks run in reverse order.
  /// Throws InvalidState after start(), InvalidArgument for an empty hook.
  void on_stop(Hook hook);
  /// Adds a pair: `stop` runs at shutdown only if `start` succeeded (a service opened by
  /// `start` and closed by `stop`).
  void on_start_stop(Hook start, Hook stop);

  /// Starts the loop thread and returns once the loop accepts work and the on_start hooks
  /// are done.
  /**
   * Without hooks, cpu_affinity or on_thread_start nothing on the new thread can fail the
   * start, and start() returns without waiting for the thread to be scheduled: work
   * submitted meanwhile waits in the queue, and a stop() right away ends the loop as usual.
   * The thread takes LoopOptions::name as its first step, before it runs anything of the
   * loop's; until then the system shows the name of the thread that called start().
   *
   * @par Throws
   * InvalidState if called before (start twice, or restart after stop, or run_here()), and
   * for a borrowed io_context that is stopped (its owner must restart() it first), that
   * the calling thread is running, or that another loop drives. If LoopOptions::
   * on_thread_start or an on_start hook throws, start() throws that exception, after the
   * on_stop parts of the hooks that had succeeded ran and the thread was joined; the
   * same for InvalidArgument when the CPUs of LoopOptions::cpu_affinity are not allowed
   * to this process; Timeout if the hooks ran past LoopOptions::start_timeout.
   */
  void start();

  /// Runs the loop on the calling thread until it stops, instead of on a thread of its own.
  /**
   * For programs whose main thread should be the loop (asyncio's `loop.run_forever()` on
   * the main thread). The calling thread becomes the loop thread: it runs the on_start
   * hooks, then the loop, then the stop sequence, and returns the stop's report. Everything
   * else is as with start(): other threads submit, post, cancel, cancel_all and stop through
   * the same queue; current_loop() and on_loop_thread() answer for this thread, and a
   * blocking wait on it throws DeadlockError. The thread keeps its name, CPUs and stack.
   *
   * It returns once something stops the loop: stop() from another thread, which returns
   * once the loop has ended here (every handle settled, hooks done), or stop() from a task
   * or hook on this thread. After the loop has ended, run_here() touches nothing of this
   * object, so the thread whose stop() returned may destroy it. Submissions from other
   * threads are accepted from the moment run_here() begins the start: threads made by an
   * on_start hook can submit at once.
   *
   * @par Blocking
   * Until the loop has stopped.
   * @par Throws
   * As start(); also InvalidArgument when LoopOptions::cpu_affinity, stack_size or
   * on_thread_start is set (they set up a thread the loop creates), DeadlockError on a loop
   * thread.
   */
  ShutdownReport run_here();

  /// Stops the loop and joins its thread; see the class comment for the sequence.
  /**
   * Idempotent: later calls (from any thread) wait for the first to finish and return its
   * report, with the counts brought up to date (refused submissions go on counting). On
   * this loop's own thread, one of its to_thread workers or inside one of its tasks'
   * call_host() functions, it requests the stop with `options` and returns at once
   * (report.joined == false). A loop never started becomes stopped. With
   * run_here(), it waits for the loop to end on the run_here() thread (report.joined tells
   * whether it ended within the deadlines).
   *
   * @par Blocking
   * Up to the options' deadlines (hooks, drain, cancel; to_thread functions get what is
   * left of the cancel deadline) plus a margin for the thread's teardown (2 s, and 1 s per
   * million tasks in flight); never longer. A stop during start() (its on_start hooks)
   * first waits for the start, up to LoopOptions::start_timeout.
   * @par Throws
   * DeadlockError on another loop's thread; InvalidArgument for a negative deadline.
   */
  ShutdownReport stop(StopOptions options = {});

  // ---- What a LoopHandle to this loop does (see LoopHandle for each) ----

  /// As LoopHandle::submit(): `submit(fn, args...)`, `submit(fn, options, args...)`,
  /// `submit(fn, stop, args...)`.
  template <class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  auto submit(F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {}, A6&& a6 = {},
              detail::CallSite where = source_location::current()) const {
    return handle_.submit(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),
                          std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6), where);
  }
  /// As LoopHandle::post(): `post(fn, args...)`, `post(fn, options, args...)`,
  /// `post(fn, stop, args...)`.
  template <class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  void post(F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {}, A6&& a6 = {},
            detail::CallSite where = source_location::current()) const {
    handle_.post(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),
                 std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6), where);
  }
  /// As LoopHandle::cancel_all().
  [[nodiscard]] TaskHandle<std::size_t> cancel_all() const;
  /// As LoopHandle::get_executor().
  executor_type get_executor() const { return handle_.get_executor(); }
  /// As LoopHandle::in_flight().
  [[nodiscard]] TaskHandle<std::vector<TaskInfo>> in_flight() const;
  /// As LoopHandle::stats().
  LoopStats stats() const;
  /// As LoopHandle::request_stop().
  void request_stop(StopOptions options = {}) const { handle_.request_stop(options); }
  /// As LoopHandle::wait_stopped().
  template <class Rep, class Period>
  bool wait_stopped(std::chrono::duration<Rep, Period> timeout) const {
    return handle_.wait_stopped(timeout);
  }
  /// As LoopHandle::id().
  std::uint64_t id() const { return handle_.id(); }
  /// As LoopHandle::state().
  LoopState state() const { return handle_.state(); }
  /// As LoopHandle::queue_depth().
  std::size_t queue_depth() const { return handle_.queue_depth(); }
  /// As LoopHandle::unhandled_errors().
  std::uint64_t unhandled_errors() const { return handle_.unhandled_errors(); }
  /// As LoopHandle::name().
  std::string_view name() const { return handle_.name(); }
  /// As LoopHandle::backend().
  IoBackend backend() const { return handle_.backend(); }
  /// True when called on this loop's thread.
  bool on_loop_thread() const noexcept { return handle_.on_loop_thread(); }

  /// A copyable handle to this loop.
  LoopHandle handle() const noexcept { return handle_; }
  /// This loop as a handle, wherever one is taken (run(loop, ...), say).
  operator const LoopHandle&() const noexcept { return handle_; }

private:
  void add_hooks(Hook start, Hook stop);

  LoopHandle handle_;
};

/// The BackgroundLoop whose thread runs the caller (asyncio's get_running_loop), or null on
/// any other thread.
BackgroundLoop* current_loop() noexcept;

}  // namespace loopbridge

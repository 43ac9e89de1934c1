#pragma once

#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/loop_handle.hpp>
#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/task_handle.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/thread/thread.hpp>

#include <functional>
#include <mutex>
#include <optional>

namespace loopbridge {

/// A lifecycle hook: a coroutine run on the loop thread (Quart's before_serving /
/// after_serving).
using Hook = std::function<boost::asio::awaitable<void>()>;

/// Runs an Asio io_context on a dedicated, named thread owned by this object.
/**
 * Synchronous host code (a thread-per-request server, a worker pool, a unit test) submits
 * coroutines and callables and gets TaskHandles back. Every cross-thread interaction (submit,
 * post, cancel, cancel_all, stop) is a command on one thread-safe queue drained by the loop
 * thread.
 *
 * start() returns once the loop runs and its on_start hooks have finished. stop() (and the
 * destructor) refuses new work, runs the on_stop hooks in reverse, optionally drains, cancels
 * what is left, abandons what does not unwind in time, and joins the thread: every TaskHandle
 * settles. docs/lifecycle.md has the table of what each step does to queued work, running
 * coroutines and pending handles.
 *
 * A BackgroundLoop is also a LoopHandle to itself; handle() gives a copyable one to pass
 * around.
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: safe, all of it from any thread, except that the
 * hook registration calls belong before start(). Blocking calls (stop() that must join)
 * made on any loop thread throw DeadlockError; stop() on this loop's own thread only
 * requests the stop. The destructor must not run on the loop thread: there it requests the
 * stop, detaches the thread and reports the misuse to the error handler.
 *
 * @par After stop
 * A stopped loop cannot be restarted (start() throws InvalidState). Submissions settle
 * with LoopStopped at once; post() throws LoopStopped.
 */
class BackgroundLoop : public LoopHandle {
public:
  /// Creates the loop; nothing runs until start().
  /// Throws InvalidArgument for a bad name or a negative deadline.
  explicit BackgroundLoop(LoopOptions options = {});

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

  /// Starts the loop thread and returns once the loop runs and the on_start hooks are done.
  /**
   * @par Throws
   * InvalidState if called before (start twice, or restart after stop). If an on_start hook
   * throws, start() throws that exception, after the on_stop parts of the hooks that had
   * succeeded ran and the thread was joined; Timeout if the hooks ran past
   * LoopOptions::start_timeout.
   */
  void start();

  /// Stops the loop and joins its thread; see the class comment for the sequence.
  /**
   * Idempotent: later calls (from any thread) wait for the first to finish and return its
   * report, with the counts brought up to date (refused submissions go on counting). On this loop's own thread it requests the stop with `options` and returns
   * at once (report.joined == false). A loop never started becomes stopped.
   *
   * @par Blocking
   * Up to the options' deadlines (hooks, drain, cancel); never longer.
   * @par Throws
   * DeadlockError on another loop's thread; InvalidArgument for a negative deadline.
   */
  ShutdownReport stop(StopOptions options = {});

  /// A copyable handle to this loop.
  LoopHandle handle() const noexcept { return *this; }

private:
  void add_hooks(Hook start, Hook stop);

  std::mutex lifecycle_mutex_;
  boost::thread thread_;
  ShutdownReport final_report() const;

  // Set once the stop has ended: whether the thread was joined.
  std::optional<bool> joined_;
};

/// The BackgroundLoop whose thread runs the caller (asyncio's get_running_loop), or null on
/// any other thread.
BackgroundLoop* current_loop() noexcept;

}  // namespace loopbridge

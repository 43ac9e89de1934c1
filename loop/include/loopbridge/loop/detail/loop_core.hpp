#pragma once

#include <loopbridge/loop/backend.hpp>
#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/command_queue.hpp>
#include <loopbridge/loop/detail/deadline.hpp>
#include <loopbridge/loop/detail/host_waiter.hpp>
#include <loopbridge/loop/detail/ref.hpp>
#include <loopbridge/loop/detail/task_state.hpp>
#include <loopbridge/loop/detail/worker_pool.hpp>
#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/source_location.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/thread/thread.hpp>

#if defined(BOOST_ASIO_HAS_IO_URING) && !defined(LOOPBRIDGE_LIBURING_TAGS_CLEARED)
#error "this io_uring build of loopbridge needs its liburing.h ahead of the system's (loopbridge/loop/detail/liburing on the include path, as linking loopbridge::loop gives it; see docs/customise.md)"
#endif

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace loopbridge {
class BackgroundLoop;
}

namespace loopbridge::detail {

class LoopCore;
class TaskBase;

/// The task whose coroutine runs on `executor` (the executor a task's coroutine gets from
/// this_coro::executor), or null.
TaskBase* task_of(const boost::asio::any_io_executor& executor) noexcept;

/// The loop whose thread is running the caller, or null.
LoopCore* this_thread_core() noexcept;
void set_this_thread_core(LoopCore* core) noexcept;
/// The loop whose stop waits for the work this thread runs (one of its to_thread workers,
/// or a host running one of its tasks' call_host() functions): a stop of that loop must not
/// join here. Null elsewhere. The exchange sets it and returns the previous one.
const LoopCore* this_thread_work_owner() noexcept;
const LoopCore* exchange_this_thread_work_owner(const LoopCore* owner) noexcept;

/// InvalidArgument for a CPU that does not exist or a stack size out of range.
void check_thread_options(const LoopOptions& options);
/// Makes the io_context open its I/O backend now; BackendUnavailable if the kernel refuses.
void check_backend(boost::asio::io_context& io);

/// A coroutine on a loop waiting for a task's result without blocking (async_wait). The
/// loop it waits on keeps a list of these so that none outlives the loop's io_context.
class PendingWait : public Continuation, public Command {
public:
  /// Loop thread, at shutdown, after the continuation was taken back: destroy the waiting
  /// handler (and so the coroutine frame) here.
  virtual void destroy_now() noexcept = 0;
  /// True when the awaited work (a to_thread or call_host function) may use the waiting
  /// coroutine's frame until it returns: the frame must outlive it.
  virtual bool frame_used_by_work() const noexcept = 0;
  /// Loop thread, at its end, for a wait whose function still runs: the wait and its frame
  /// are never destroyed; this lets go of the loop, so that the rest of it is freed.
  virtual void keep_without_loop() noexcept = 0;
  /// The state whose continuation this is.
  virtual StateBase& awaited() noexcept = 0;

  PendingWait* prev_wait = nullptr;
  PendingWait* next_wait = nullptr;

protected:
  ~PendingWait() = default;
};

using Hook = std::function<boost::asio::awaitable<void>()>;

/// An on_start / on_stop pair: the stop part runs at shutdown when the start part (if any)
/// succeeded.
struct HookEntry {
  Hook on_start;
  Hook on_stop;
};

/// An io_context whose owner may destroy the pending handlers (and so the suspended
/// coroutine frames) on the loop thread, while keeping the object alive for late posts.
class OwnedIoContext : public boost::asio::io_context {
public:
  OwnedIoContext() : boost::asio::io_context(1) {}
  using boost::asio::io_context::shutdown;
};

/// What identifies a submission in stats, stall reports and the in-flight list.
struct TaskLabel {
  std::string name;
  source_location where;
  std::chrono::steady_clock::time_point submitted_at;
};

/// A log-scale histogram of durations in nanoseconds: 8 buckets per power of two, so a
/// percentile read from it is within 1/8 of the true value. One writer (the loop thread),
/// any number of readers, no locks.
class DurationHistogram {
public:
  static constexpr std::size_t kBuckets = 8 + 61 * 8;
  using Counts = std::array<std::uint64_t, kBuckets>;

  void record(std::chrono::nanoseconds duration) noexcept;
  Counts snapshot() const noexcept;
  std::chrono::nanoseconds max() const noexcept { return std::chrono::nanoseconds(max_.load(std::memory_order_relaxed)); }
  /// The value below which a fraction `p` of the recorded durations fall (the bucket's
  /// upper bound); zero when nothing was recorded.
  static std::chrono::nanoseconds percentile(const Counts& counts, double p) noexcept;

private:
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::int64_t> max_{0};
};

enum class Lifecycle : std::uint8_t { created, starting, running, stopping, stopped };
/// Where a loop runs: on a thread start() created for it, or on the thread that called
/// run_here().
enum class LoopThread : std::uint8_t { own, caller };
enum class TaskKind : std::uint8_t { task, detached, hook };

/// Cancels one task; embedded in the task, so cancel() allocates nothing.
class CancelCommand final : public Command {
public:
  explicit CancelCommand(TaskBase& task) : task_(task) {}
  void execute(LoopCore& core) noexcept override;
  void discard(LoopCore& core) noexcept override;

private:
  TaskBase& task_;
};

/// The loop-thread side of a task: its place among the in-flight tasks, its cancellation
/// signal and the commands that act on it. Its typed result lives in the Task that derives
/// from it.
class TaskBase : public Command {
public:
  /// `core` must outlive the task's time on the loop; afterwards only a caller that keeps
  /// the core alive (a TaskHandle) may use it (to cancel).
  TaskBase(LoopCore& core, TaskKind kind, bool is_coroutine) : coroutine(is_coroutine), core_(core), kind_(kind) {}

  void execute(LoopCore& core) noexcept override;
  void discard(LoopCore& core) noexcept override;

  /// Any thread: a task not started yet is settled with TaskCancelled here and now (its
  /// callable destroyed first; the loop goes on meanwhile, and its stop waits for this), and
  /// never runs; a running coroutine gets a cancel through the queue. True if either
  /// happened or a cancel is already on its way; false for a settled task and a plain
  /// callable that has started. When another cancel is still destroying the callable, waits
  /// for it (the task has settled on return), except on a loop thread and on a thread that
  /// is itself inside such a cancel (a capture's destructor): the canceller may be waiting
  /// for them.
  bool request_cancel_any_thread(CancelCause cause) noexcept;
  /// The submitting thread claims a task the loop refused: false if a cancel got there
  /// first, and then only once the canceller has settled it, so that the handle the caller
  /// gets back has settled.
  bool claim_refusal() noexcept;
  /// A cancel has claimed the task and is still destroying its callable (on its own thread).
  bool cancel_in_progress() const noexcept {
    return cancel_gate_.load(std::memory_order_acquire) == CancelGate::cancelling;
  }
  /// Returns once no cancel is destroying the task's callable any more.
  void wait_for_canceller() const noexcept;

  /// Loop thread: starts the work (runs a callable inline, spawns a coroutine).
  virtual void run() noexcept = 0;
  /// Settles with an exception, without touching the callable's result.
  virtual void settle_exception(std::exception_ptr error) noexcept = 0;
  /// Destroys the stored callable (on the loop thread, or on the thread that cancelled the
  /// task before it started) and detaches the task from its stop token.
  void drop_function() noexcept {
    stop_link_.reset();
    drop_callable();
  }
  /// Links a std::stop_token: a stop request cancels the task. Before the task is queued.
  void link_stop_token(std::stop_token token);
  virtual StateBase& state() noexcept = 0;

  LoopCore& core() const noexcept { return core_; }
  TaskKind kind() const noexcept { return kind_; }

  /// Coroutines are tracked in flight; callables run to their end inside one command.
  const bool coroutine;
  /// What the cancel on its way is for: written by the requesting thread before it queues
  /// the cancel, read by the loop when it delivers it.
  CancelCause requested_cause = CancelCause::cancel;
  /// What cancelled the task (loop thread, once a cancel was delivered).
  CancelCause cancel_cause = CancelCause::cancel;
  /// Captured from the submitting thread (set before the task is queued).
  std::shared_ptr<const ContextData> context;
  TaskLabel label;
  /// The host thread that submitted this task, for call_host (set before queueing; null
  /// when a loop thread submitted it).
  Ref<HostWaiter> host_waiter;
  /// Set for a coroutine task on a borrowed io_context: whoever runs that io_context after
  /// the loop is gone may resume what the task left there (its own frame when abandoned, a
  /// coroutine it co_spawned on its executor), which still reaches its loop (RunScope,
  /// conclude).
  Ref<RefCounted> keeps_loop;

  // Loop-thread bookkeeping, owned by LoopCore.
  TaskBase* prev_in_flight = nullptr;
  TaskBase* next_in_flight = nullptr;
  std::uint64_t start_seq = 0;
  bool running = false;
  bool cancel_delivered = false;
  bool settled = false;
  /// Settled by the stop (dropped or abandoned) while its coroutine was suspended, on an
  /// owned io_context: it is never resumed again, and whatever would resume it destroys
  /// its frames instead.
  bool given_up = false;
  /// Ended with an exception of its own (counted failed). Written before the settle.
  bool failed_own = false;
  /// Settled by the stop (dropped or abandoned) while it still ran, on any io_context.
  /// Written before the settle, which publishes it.
  bool left_by_stop = false;
  /// What escaped a stretch of its coroutine (escaped_task_stretch).
  std::exception_ptr escaped_error;
  boost::asio::cancellation_signal cancel_signal;

protected:
  ~TaskBase() = default;

private:
  virtual void drop_callable() noexcept = 0;

  struct CancelOnStop {
    TaskBase* task;
    void operator()() const noexcept { task->request_cancel_any_thread(CancelCause::stop_token); }
  };

  LoopCore& core_;
  TaskKind kind_;
  // Destroyed (so deregistered) before the task settles: a stop request never reaches a
  // settled task, nor a loop that has gone.
  std::unique_ptr<std::stop_callback<CancelOnStop>> stop_link_;
  /// Who settles a task that has not started: whichever leaves `open` first of a cancel
  /// (`cancelling`, then `cancelled_unstarted` once the canceller has destroyed the callable
  /// and settled the task), the loop's start (`callable_started`: a cancel cannot interrupt
  /// it; `coroutine_started`: a cancel becomes `coroutine_cancel_requested`, queued once)
  /// and a refusal (`refused`: by the stop, or at the call).
  enum class CancelGate : std::uint8_t {
    open,
    cancelling,
    cancelled_unstarted,
    callable_started,
    coroutine_started,
    coroutine_cancel_requested,
    refused
  };
  /// Moves the gate from `open` to `to`. False if a cancel got there first: the canceller
  /// settles the task, and may still be destroying its callable (cancel_in_progress()).
  bool claim_start(CancelGate to) noexcept;
  std::atomic<CancelGate> cancel_gate_{CancelGate::open};
  CancelCommand cancel_command_{*this};

  friend class LoopCore;
};

/// The state behind a cancel_all() handle.
class CancelAllState final : public TypedState<std::size_t>, public Command {
public:
  void execute(LoopCore& core) noexcept override;
  void discard(LoopCore& core) noexcept override;

  std::size_t cancelled = 0;
  std::size_t remaining = 0;
  std::uint64_t last_seq = 0;
};

/// The state behind an in_flight() handle.
class InFlightQuery final : public TypedState<std::vector<TaskInfo>>, public Command {
public:
  void execute(LoopCore& core) noexcept override;
  void discard(LoopCore& core) noexcept override;
};

/// Times one stretch of loopbridge work on the loop thread (a callable, a task's start, one
/// resumption of a task's coroutine): feeds longest_handler and stall detection. Nested
/// stretches (a resumption run inline inside another) are charged to the innermost one.
class RunScope {
public:
  /// `command`: the scope is the whole of a queued command's work (a posted call, a task's
  /// start), so within a drained batch it may start where the previous such scope ended
  /// (LoopCore::command_start()) instead of reading the clock.
  enum class Kind { stretch, command };

  RunScope(LoopCore& core, const TaskLabel& label, Kind kind = Kind::stretch) noexcept;
  ~RunScope();
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

  std::chrono::steady_clock::time_point started() const noexcept { return start_; }

private:
  LoopCore& core_;
  const TaskLabel& label_;
  Kind kind_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::nanoseconds outer_nested_;
};

/// The engine behind BackgroundLoop: the io_context, the command queue, the in-flight tasks
/// and the start and stop sequences. Shared (intrusively counted) by the owner, every
/// LoopHandle, every task and the loop thread; the io_context is only ever run by the loop
/// thread, and reached from other threads only through the command queue.
class LoopCore final : public RefCounted {
public:
  /// `borrowed`: an io_context its owner keeps (and must keep alive until the loop has
  /// stopped); null: the loop makes its own.
  explicit LoopCore(LoopOptions options, boost::asio::io_context* borrowed = nullptr);
  ~LoopCore() override;

  // ---- any thread ----
  Lifecycle lifecycle() const noexcept { return lifecycle_.load(std::memory_order_acquire); }
  const std::string& name() const noexcept { return options_.name; }
  boost::asio::io_context::executor_type executor() noexcept { return io_.get_executor(); }
  std::size_t queue_depth() const noexcept { return queue_.depth(); }
  std::uint64_t unhandled_errors() const noexcept { return unhandled_errors_.load(std::memory_order_relaxed); }
  LoopStats stats() const noexcept;
  DurationHistogram::Counts lag_counts() const noexcept { return lag_.snapshot(); }
  /// A process-wide number, in creation order: tells loops made after a point in time.
  std::uint64_t serial() const noexcept { return serial_; }
  /// Every loop not yet stopped, in creation order.
  static std::vector<Ref<LoopCore>> live();
  LoopCore* next_in_registry() const noexcept { return next_live_; }

  // ---- fork() ----
  static constexpr const char* kForkedAway =
      "the loop's thread is in the parent process: this process is a fork() child of the one that started it";
  /// In a fork() child: the loop's thread was not copied, so the loop is stopped here and
  /// every call that would wait for it fails at once. Lock-free (runs in the child's
  /// pthread_atfork handler).
  void orphan_in_fork_child() noexcept;
  /// True in a fork() child for a loop the parent had started.
  bool forked_away() const noexcept { return forked_away_.load(std::memory_order_relaxed); }
  /// LoopStopped in a fork() child for a loop the parent had started.
  void check_not_forked_away() const;
  /// The counts, without taking a lock (which a thread of the parent may have held).
  ShutdownReport report_in_fork_child() const noexcept;
  IoBackend backend() const noexcept;
  BackgroundLoop* owner() const noexcept { return owner_.load(std::memory_order_acquire); }
  void set_owner(BackgroundLoop* owner) noexcept { owner_.store(owner, std::memory_order_release); }

  /// Pushes a command and wakes the loop if it may be asleep. False if the queue is closed
  /// (the caller still owns the command).
  bool push(Command& command) noexcept;

  /// Host side of every submit() and post(): counts it and, under a queue capacity, takes
  /// its place in the queue (waiting, or throwing QueueFull, as the options say). False
  /// when the loop no longer accepts work (counted as rejected).
  bool admit(const SubmitOptions& options);
  /// Pushes an admitted submission. False when the queue closed since (counted as rejected;
  /// the caller still owns the command).
  bool push_admitted(Command& command) noexcept;
  /// A list of the tasks in flight, built on the loop thread.
  Ref<InFlightQuery> query_in_flight();

  /// Throws InvalidState before start.
  void check_started() const;
  /// False when the loop no longer accepts work.
  bool accepting() const noexcept {
    Lifecycle state = lifecycle();
    return state == Lifecycle::starting || state == Lifecycle::running;
  }

  /// Settles a submission refused by admit() or push_admitted() with LoopStopped.
  void reject_at_call(TaskBase& task) noexcept;

  Ref<CancelAllState> cancel_all();

  /// Sends an error with no future to the error handler, and counts it.
  void report_error(std::exception_ptr error, std::string_view context) noexcept;

  // ---- host side of the lifecycle (BackgroundLoop) ----
  /// Takes `entry` (moved from only when added). InvalidState after start().
  void add_hook(HookEntry& entry);
  /// After begin_start(): checks that a borrowed io_context can be run by this loop alone
  /// and marks it as driven by this loop (InvalidState if not).
  void claim_io_context();
  /// Creates the loop's own thread (with the configured stack size) running thread_main();
  /// it holds a reference to this core.
  boost::thread create_own_thread();
  /// Before start() creates the thread: when nothing on it can fail the start (no hooks, no
  /// pinning, no on_thread_start), marks the loop started and returns true; start() then
  /// returns without waiting for the new thread to be scheduled.
  bool mark_started_before_thread() noexcept;
  /// run_here(): InvalidArgument when options meant for a thread of the loop's own are set.
  void check_runs_on_caller() const;
  /// The loop thread's body.
  void thread_main(LoopThread where) noexcept;
  /// Blocks until the start sequence finished; rethrows its error.
  void wait_started();
  /// Queues the stop once; later calls keep the first options.
  void request_stop(const StopOptions& options) noexcept;
  /// Whether a stop was requested (by anyone, or by a failed start).
  bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_acquire); }
  /// Waits for the loop thread's end (false at the deadline).
  bool wait_finished(std::chrono::steady_clock::time_point deadline);
  /// Waits for the loop thread's end and then for its to_thread workers to be idle (the
  /// functions a stop left running); false at the deadline.
  bool wait_released(std::chrono::steady_clock::time_point deadline);
  ShutdownReport report() const;
  /// The longest a stop may take, hooks included: the first stop requested, or a stop with
  /// `options` if none was. A stop during the start also waits for the start (and for its
  /// undoing, should it fail).
  std::chrono::nanoseconds stop_budget(const StopOptions& options) const;
  const StopOptions& destructor_stop() const noexcept { return options_.destructor_stop; }
  std::chrono::nanoseconds spin_before_sleep() const noexcept { return options_.spin_before_sleep; }
  /// Loop thread: the pool for blocking work, started on first use.
  WorkerPool& workers();
  void mark_start_failed_before_thread() noexcept;
  /// created -> starting; false if the loop was started or stopped before.
  bool begin_start() noexcept;

  // ---- loop thread ----
  void drain() noexcept;
  /// The wake-up posted to a borrowed io_context: drains on the loop thread; elsewhere it
  /// is a wake-up left from before the stop, or a sign that another thread runs the
  /// io_context (reported, and handed back to the loop thread).
  void drain_borrowed() noexcept;
  /// First thing a drain handler does: a later push may post the next wake-up.
  void wake_taken() noexcept { wake_pending_.exchange(false, std::memory_order_acq_rel); }
  /// A lifecycle coroutine (start or stop sequence) ended; the io_context stops once the
  /// stop has finished and none is left.
  void sequence_ended() noexcept;
  void start_task(TaskBase& task) noexcept;
  /// Whether the stop under way settles queued work without starting it: always, unless it
  /// drains (StopOptions::drain_timeout), and then once its drain has ended.
  bool stop_refuses_queued_work() noexcept;
  /// Emits the cancellation signal of a running task, once; `cause` is what TaskCancelled says.
  void deliver_cancel(TaskBase& task, CancelCause cause) noexcept;
  void start_cancel_all(CancelAllState& group) noexcept;
  /// Records how a task ended; returns the exception to settle it with (null: its value), or
  /// nothing when it was already settled (abandoned) and must not be settled again.
  std::optional<std::exception_ptr> conclude(TaskBase& task, std::exception_ptr error) noexcept;
  /// After a concluded task has settled: it leaves the in-flight tasks.
  void task_left(TaskBase& task) noexcept;
  /// A concluded task's value could not be stored after all: it failed.
  void recount_completed_as_failed() noexcept;
  void reject(TaskBase& task) noexcept;
  /// A queued task the stop settles TaskCancelled without starting it.
  void cancel_queued_at_stop(TaskBase& task) noexcept;
  /// The loop found `task` cancelled before it started: counts it and goes on. A canceller
  /// still destroying the callable may be waiting for the loop itself (a capture whose
  /// destructor submits and waits): the task is kept until the stop's end, which waits for
  /// it once the queue has closed; from then on the canceller is waited for at once.
  void cancelled_before_start(TaskBase& task) noexcept;
  void execute_stop() noexcept;
  /// PostedCall's bookkeeping: false when the loop refused it (counted and reported).
  bool begin_posted_call(const TaskLabel& label, std::chrono::steady_clock::time_point now) noexcept;
  void end_posted_call(std::exception_ptr error) noexcept;
  /// A queued post dropped when the queue closed.
  void discard_posted_call() noexcept;
  void refuse_posted_call() noexcept;
  /// RunScope's report: one stretch of work ran for `duration`.
  void stretch_ran(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept;
  /// The clock of a command's RunScope. Within a drained batch it starts when the previous
  /// command's scope ended, if that command ran nothing after it (one clock reading per
  /// command instead of two); otherwise it reads the clock.
  std::chrono::steady_clock::time_point command_start() noexcept {
    if (!batch_clock_armed_) return std::chrono::steady_clock::now();
    batch_clock_armed_ = false;
    return batch_clock_;
  }
  void command_scope_ended(std::chrono::steady_clock::time_point end) noexcept {
    batch_clock_ = end;
    batch_clock_valid_ = true;
  }
  /// User code ran after the command's scope (an error or stall handler, a destructor):
  /// the next command reads the clock.
  void batch_clock_moved() noexcept { batch_clock_valid_ = false; }
  /// The tasks in flight (loop thread).
  std::vector<TaskInfo> in_flight_snapshot() const;
  /// An exception left a stretch of `task`'s coroutine. Asio lets one out when an operation
  /// the coroutine awaited throws from its initiation (std::bad_alloc), after giving up the
  /// coroutine: the task fails with it once its frame is destroyed. Also reported.
  void escaped_task_stretch(TaskBase& task, std::exception_ptr error) noexcept;
  void register_wait(PendingWait& wait) noexcept;
  /// Loop thread, at its end: destroys the waits kept at stop whose function returned by
  /// the cancel deadline. True if any function still runs (its frame is kept for good).
  bool release_waits_on_running_work() noexcept;
  void unregister_wait(PendingWait& wait) noexcept;

private:
  template <class>
  friend class WakeAllocator;

  class StopCommand final : public Command {
  public:
    void execute(LoopCore& core) noexcept override { core.execute_stop(); }
    void discard(LoopCore&) noexcept override {}
  };

  boost::asio::awaitable<void> start_sequence(std::exception_ptr setup_error);
  /// Names and pins the loop's own thread and runs on_thread_start; returns their error. A
  /// step added here that can fail must also keep mark_started_before_thread() from skipping
  /// start()'s wait.
  std::exception_ptr set_up_own_thread() noexcept;
  /// co_spawns a lifecycle coroutine, counted until it has ended.
  void spawn_sequence(boost::asio::awaitable<void> sequence);
  /// Stops the io_context once the stop has finished and no lifecycle coroutine is left,
  /// so none of their frames stays behind in it.
  void stop_io_when_idle() noexcept;
  /// Posts a drain handler unless one is pending already (it will find what was pushed).
  void wake() noexcept;
  /// Loop thread, after the last run: what a borrowed io_context keeps is left to its owner
  /// (and reported); the io_context is no longer driven by this loop.
  void leave_borrowed_io_context() noexcept;
  void release_io_context_claim() noexcept;
  boost::asio::awaitable<void> stop_sequence();
  /// Drains, cancels and abandons in-flight tasks, then closes the queue and stops io_.
  boost::asio::awaitable<void> wind_down();
  /// Delivers the stop's cancel to every task in flight, a part at a time, until `deadline`.
  boost::asio::awaitable<void> cancel_in_flight(std::chrono::steady_clock::time_point deadline);
  /// Runs one hook to its end, or its deadline; returns its error.
  boost::asio::awaitable<std::exception_ptr> run_hook(const Hook& hook, std::chrono::steady_clock::time_point deadline,
                                                      const char* which);
  /// Waits on the loop thread until `done()` or the deadline; true if done() held.
  boost::asio::awaitable<bool> wait_until(const std::function<bool()>& done,
                                          std::chrono::steady_clock::time_point deadline);
  /// Ends every PendingWait registered here before the queue closes.
  boost::asio::awaitable<void> settle_pending_waits();
  /// Wakes wait_until after a task ended.
  void notify_progress() noexcept;
  void link(TaskBase& task) noexcept;
  void unlink(TaskBase& task) noexcept;
  /// Settles every task still in flight without resuming it (TaskAbandoned, or
  /// TaskCancelled when `dropped`); their frames die in io_.shutdown().
  void abandon_remaining(bool dropped) noexcept;
  /// The start succeeded (on the loop thread, or before it in mark_started_before_thread());
  /// releases start().
  void mark_started() noexcept;
  /// Sets a latch flag and wakes the host threads waiting on it.
  void open_latch(std::atomic<bool>& flag) noexcept;
  /// Host thread: waits for a latch flag, spinning briefly first (the loop thread usually
  /// gets there within microseconds, and a sleeping wake costs tens of them).
  bool wait_latch(const std::atomic<bool>& flag, std::chrono::steady_clock::time_point deadline);
  /// `slot`'s error, made by `make` the first time (out of memory: the bad_alloc, shared too).
  template <class Make>
  static const std::exception_ptr& shared_error(std::exception_ptr& slot, Make make) noexcept {
    if (!slot) {
      try {
        slot = std::make_exception_ptr(make());
      } catch (...) {
        slot = std::current_exception();
      }
    }
    return slot;
  }
  /// Closes the queue and settles (discards) what was left in it.
  void close_queue() noexcept;
  /// The next batch of commands: what is left of the last one, or all that was queued since.
  Command* take_batch() noexcept;
  /// After the last run: waits until every push that woke the loop has finished posting.
  void wait_for_late_wakes() noexcept;
  void finalize() noexcept;
  void bump(std::atomic<std::uint64_t>& counter) noexcept;
  /// A queued submission left the queue (started, refused or discarded).
  void dequeued() noexcept;
  void running_delta(std::int64_t delta) noexcept;
  /// Under a queue capacity: takes a place if one is free.
  bool try_reserve() noexcept;
  /// Accepted submissions still waiting in the queue.
  std::uint64_t queued() const noexcept;
  /// QueueFullPolicy::wait: waits for a place until `deadline`; false if none came.
  bool wait_for_room(std::chrono::steady_clock::time_point deadline);
  /// Loop thread: wakes submissions waiting for room.
  void wake_full_waiters() noexcept;
  void report_stall(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept;
  TaskInfo describe(const TaskBase& task, std::chrono::steady_clock::time_point now) const;

  LoopOptions options_;
  std::atomic<BackgroundLoop*> owner_{nullptr};
  std::atomic<Lifecycle> lifecycle_{Lifecycle::created};
  CommandQueue queue_;
  std::optional<OwnedIoContext> owned_io_;  // empty when the io_context is borrowed
  boost::asio::io_context& io_;             // owned_io_'s, or the borrowed one
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<HookEntry> hooks_;
  std::shared_ptr<WorkerPool> workers_;  // loop thread creates; stopped after the loop ends
  std::weak_ptr<WorkerPool> retired_workers_;  // set as the loop ends, for wait_released()
  std::atomic<std::uint64_t> abandoned_workers_{0};
  std::atomic<LoopCore*>* io_driver_ = nullptr;  // the borrowed io_context's record of its loop, once claimed
  std::atomic<bool> foreign_runner_reported_{false};

  // Loop thread only.
  TaskBase* in_flight_head_ = nullptr;
  TaskBase* in_flight_tail_ = nullptr;
  PendingWait* waits_head_ = nullptr;
  std::uint64_t next_seq_ = 0;
  std::vector<Ref<CancelAllState>> pending_cancel_alls_;
  std::vector<TaskBase*> abandoned_;
  // Tasks a cancel claimed before they started whose canceller was still destroying the
  // callable when the loop reached them; each holds a reference to its state.
  std::vector<TaskBase*> cancels_in_progress_;
  // Waits taken back at stop whose function was still running with their frame's locals:
  // destroyed once it has returned, or never (the frame then outlives the loop).
  std::vector<PendingWait*> waits_on_running_work_;
  std::vector<Ref<RefCounted>> retiring_;  // each holds a reference until its frame is gone
  std::optional<boost::asio::steady_timer> progress_timer_;
  bool waiting_for_progress_ = false;
  bool stop_executed_ = false;
  // The stop under way was first seen here, and whether it lets queued work start while it
  // drains (stop_refuses_queued_work()).
  bool stop_seen_ = false;
  bool stop_drains_queued_work_ = false;
  // The stop has begun to cancel: queued work is refused from now on.
  bool stop_cancelling_ = false;
  // The errors the loop settles many tasks with, each made once and shared by all of them:
  // a stop may settle millions, and each make_exception_ptr allocates and formats a message.
  std::exception_ptr cancelled_at_stop_;  // queued, never started
  std::array<std::exception_ptr, 5> cancelled_while_running_;  // by CancelCause
  std::exception_ptr dropped_at_stop_;
  std::exception_ptr abandoned_at_stop_;
  // What is left of a batch of commands, oldest first: one drain runs a bounded number of
  // commands, so that timers (the stop's deadlines among them) and completions get their
  // turn between the parts of a huge batch.
  Command* unfinished_batch_ = nullptr;
  bool start_in_progress_ = false;
  bool stop_after_start_ = false;
  std::size_t hooks_started_ = 0;
  std::size_t live_sequences_ = 0;
  bool io_may_stop_ = false;
  std::chrono::steady_clock::time_point batch_clock_{};  // when the last command's scope ended
  bool batch_clock_valid_ = false;  // it ended the command just run
  bool batch_clock_armed_ = false;  // the next command's scope may start from it

  // Counters, read anywhere without a lock. Outcomes are written by the loop thread only;
  // the host side of a submission (submitted_, queued_in_, refusals) uses fetch_add. The
  // queued count is split by side (in - out) so that no cache line is written by both.
  alignas(64) std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> queued_in_{0};
  alignas(64) std::atomic<std::uint64_t> queued_out_{0}, completed_{0}, failed_{0}, cancelled_{0},
      abandoned_count_{0}, running_{0}, stalls_{0};
  std::atomic<std::int64_t> longest_stretch_ns_{0};
  std::atomic<std::uint64_t> rejected_{0}, rejected_full_{0}, unhandled_errors_{0};
  DurationHistogram lag_;
  std::atomic<std::int64_t> started_at_ns_{0};  // steady_clock, since its epoch; 0 before start
  std::uint64_t serial_;

  // Submissions waiting for room under a queue capacity.
  std::atomic<std::uint32_t> full_waiters_{0};
  std::mutex full_mutex_;
  std::condition_variable full_cv_;
  std::vector<TaskInfo> abandoned_tasks_;  // under latch_mutex_
  LoopCore* prev_live_ = nullptr;  // the registry of live loops (live())
  LoopCore* next_live_ = nullptr;

  StopCommand stop_command_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> forked_away_{false};
  // From begin_start() until the start sequence has ended (succeeded or failed).
  std::atomic<bool> start_pending_{false};

  StopOptions active_stop_;  // loop thread: the options of the stop under way
  // Loop thread: when cancelled tasks, and the to_thread functions they waited on, must have
  // ended (set once the stop starts cancelling).
  std::optional<std::chrono::steady_clock::time_point> cancel_deadline_;

  // Start and finish latches, shared with the host thread.
  mutable std::mutex latch_mutex_;
  std::condition_variable latch_cv_;
  std::atomic<bool> started_{false};
  std::atomic<bool> finished_{false};
  std::exception_ptr start_error_;
  std::vector<std::exception_ptr> hook_errors_;
  StopOptions requested_stop_;
  std::chrono::steady_clock::time_point stop_requested_at_{};
  std::chrono::nanoseconds stop_duration_{0};

  // The memory of the one wake-up (drain handler) that may be pending in io_ at a time, so
  // that waking the loop never allocates. See wake().
  static constexpr std::size_t kWakeSlotSize = 128;
  // LoopOptions::spin_before_sleep's limit: the loop's own timers wait while it spins.
  static constexpr std::chrono::milliseconds kMaxSpinBeforeSleep{10};
  // What a stop's budget allows, past its deadlines, for destroying each task in flight.
  static constexpr std::chrono::nanoseconds kTeardownPerTask{1000};
  // ShutdownReport::abandoned_tasks lists at most this many (abandoned counts them all).
  static constexpr std::size_t kListedAbandonedTasks = 1000;
  // Commands one drain runs before it lets the io_context's other work in.
  static constexpr std::size_t kCommandsPerDrain = 1024;
  alignas(std::max_align_t) std::byte wake_slot_[kWakeSlotSize];
  std::atomic<bool> wake_pending_{false};
  // Pushes that found the queue empty and have finished waking the loop; every batch the
  // loop takes (loop thread) began with one of them.
  std::atomic<std::uint64_t> first_push_wakes_{0};
  std::uint64_t batches_taken_ = 0;
};

/// Runs `resume` as one stretch of `task`'s coroutine on its loop thread, as the task's
/// executor runs every resumption: timed (stall detection), with the task's context
/// installed; not at all for a task the stop gave up. `keep` holds the task for the
/// stretch, in which its coroutine may end.
template <class F>
void run_task_stretch(TaskBase& task, [[maybe_unused]] Ref<StateBase> keep, F&& resume) noexcept {
  // Its owner destroys `resume` unrun, and with it the coroutine's frames.
  if (task.given_up) return;
  RunScope scope(task.core(), task.label);
  TaskContextInstall context(task.context);
  try {
    std::forward<F>(resume)();
  } catch (...) {
    task.core().escaped_task_stretch(task, std::current_exception());
  }
}

}  // namespace loopbridge::detail

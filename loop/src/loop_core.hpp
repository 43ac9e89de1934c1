#pragma once

// The engine behind BackgroundLoop, out of the include path: the public templates reach it
// through detail/engine.hpp's functions. It is made of single-purpose parts (admission,
// counters, the tasks in flight, the command drain, error reporting, the latches, the waits,
// what the stop gave up, the host side of the thread), tied together here; the lifecycle is
// one Phase that the loop thread moves along (start.cpp, stop.cpp, loop_thread.cpp).

#include "admission.hpp"
#include "counters.hpp"
#include "drain.hpp"
#include "given_up.hpp"
#include "in_flight.hpp"
#include "lifecycle.hpp"
#include "loop_io.hpp"
#include "own_thread.hpp"
#include "pending_waits.hpp"
#include "reporting.hpp"
#include "worker_pool.hpp"

#include <loopbridge/loop/backend.hpp>
#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/task.hpp>
#include <loopbridge/loop/options.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace loopbridge::detail {

/// An on_start / on_stop pair: the stop part runs at shutdown when the start part (if any)
/// succeeded.
struct HookEntry {
  Hook on_start;
  Hook on_stop;
};

/// The hooks of a loop: registered from any thread before the start, sealed by it, read by
/// the loop thread from then on without a lock.
class HookList {
public:
  /// Throws InvalidState once sealed, InvalidArgument for an empty entry; `entry` is moved
  /// from only when added.
  void add(HookEntry& entry);
  /// At the start: no hook is added from now on.
  void seal() noexcept;
  const std::vector<HookEntry>& entries() const noexcept { return entries_; }
  /// How many on_stop parts there are.
  std::size_t stop_parts() const noexcept;

private:
  std::mutex mutex_;
  bool sealed_ = false;
  std::vector<HookEntry> entries_;
};

/// Where a loop runs: on a thread start() created for it, or on the thread that called
/// run_here().
enum class LoopThread : std::uint8_t { own, caller };

/// The loop thread's own view of its start and stop (nobody else touches it).
struct LoopThreadState {
  StopOptions active_stop;  // the options of the start's undoing or of the stop under way
  // When cancelled tasks, and the to_thread functions they waited on, must have ended (set
  // once the stop starts cancelling).
  std::optional<std::chrono::steady_clock::time_point> cancel_deadline;
  bool start_in_progress = false;
  bool stop_after_start = false;  // a stop came during the start: it runs after it
  bool undoing_start = false;     // the start failed: what it began is being undone
  bool stop_executed = false;
  bool stop_seen = false;         // stop_refuses_queued_work() looked at the request
  bool stop_drains_queued_work = false;
  std::size_t hooks_started = 0;  // entries whose on_start part succeeded
  std::size_t live_sequences = 0;
  bool io_may_stop = false;
  std::optional<boost::asio::steady_timer> progress_timer;
  bool waiting_for_progress = false;
  std::vector<std::pair<TaskBase*, Ref<StateBase>>> slots_to_clear;  // clear_slot_later()
};

/// The engine behind BackgroundLoop. Shared (intrusively counted) by the owner, every
/// LoopHandle, every task and the loop thread; its io_context is only ever run by the loop
/// thread, and reached from other threads only through the command queue.
class LoopCore final : public Engine {
public:
  /// `borrowed`: an io_context its owner keeps (and must keep alive until the loop has
  /// stopped); null: the loop makes its own.
  explicit LoopCore(LoopOptions options, boost::asio::io_context* borrowed = nullptr);
  ~LoopCore() override;

  static LoopCore& of(Engine& engine) noexcept { return static_cast<LoopCore&>(engine); }
  static const LoopCore& of(const Engine& engine) noexcept { return static_cast<const LoopCore&>(engine); }
  static LoopCore& of(TaskBase& task) noexcept { return of(task.engine()); }

  // ---- any thread (loop_core.cpp) ----
  const LoopOptions& options() const noexcept { return options_; }
  const std::string& name() const noexcept { return options_.name; }
  Phase phase() const noexcept { return phase_.load(std::memory_order_acquire); }
  LoopState state() const noexcept;
  boost::asio::io_context::executor_type executor() noexcept { return io_.io().get_executor(); }
  IoBackend backend() const noexcept;
  std::uint64_t serial() const noexcept { return serial_; }
  BackgroundLoop* owner() const noexcept { return owner_.load(std::memory_order_acquire); }
  void set_owner(BackgroundLoop* owner) noexcept { owner_.store(owner, std::memory_order_release); }
  bool runs_here() const noexcept;
  /// Pushes a command and wakes the loop if it may be asleep. False if the queue is closed.
  bool push(Command& command) noexcept { return drain_.push(command); }
  /// Sends an error with no future to the error handler, and counts it.
  void report_error(std::exception_ptr error, std::string_view context) noexcept;
  std::uint64_t unhandled_errors() const noexcept { return counters_.errors_reported(); }
  std::size_t queue_depth() const noexcept { return drain_.depth(); }
  std::uint64_t queued() const noexcept { return admission_.queued(); }
  Counters::Snapshot snapshot() const noexcept;
  LoopStats stats() const noexcept;
  ShutdownReport report() const;

  // ---- host side of submissions (loop_core.cpp) ----
  void check_started() const;
  /// What a refused submission settles with, or throws: the loop is stopping or stopped
  /// (or, in a fork() child, its thread stayed in the parent).
  LoopStopped refusal() const;
  bool submit(TaskBase& task, const SubmitOptions& options);
  void post(std::unique_ptr<PostedCallBase> call, const SubmitOptions& options);
  Ref<TypedState<std::size_t>> cancel_all();
  Ref<TypedState<std::vector<TaskInfo>>> query_in_flight();

  // ---- host side of the lifecycle (start.cpp, stop.cpp, own_thread.cpp) ----
  /// Throws InvalidState after start().
  void add_hook(HookEntry& entry);
  /// start(): the thread made and, when something on it can fail the start, waited for.
  void start();
  /// run_here(): the loop on the calling thread until it stops; its report.
  ShutdownReport run_here();
  /// stop(): requests the stop, then joins (or detaches, past the budget).
  ShutdownReport stop(const StopOptions& options);
  /// Queues the stop once; later calls keep the first options.
  void request_stop(const StopOptions& options) noexcept;
  /// Waits for the loop thread's end (false at the deadline).
  bool wait_finished(std::chrono::steady_clock::time_point deadline) { return latches_.wait_finished(deadline); }
  /// Waits for the loop thread's end and then for its to_thread workers to be idle (the
  /// functions a stop left running); false at the deadline.
  bool wait_released(std::chrono::steady_clock::time_point deadline);
  /// The longest a stop may take: the first stop requested, or one with `options`.
  std::chrono::nanoseconds stop_budget(const StopOptions& options) const;
  /// The destructor's stop; on a thread that must not join (a loop thread, a worker or a
  /// host call of this loop), it requests the stop, detaches and reports the misuse.
  void stop_for_destructor() noexcept;
  /// At exit, on a thread that must not join: requests the stop and detaches, quietly.
  void let_go_at_exit() noexcept;

  // ---- fork() (registry.cpp) ----
  static constexpr const char* kForkedAway =
      "this process is a fork() child of the one that started the loop, whose thread stayed in the parent";
  void orphan_in_fork_child() noexcept;
  bool forked_away() const noexcept { return forked_away_.load(std::memory_order_relaxed); }
  void check_not_forked_away() const;
  ShutdownReport report_in_fork_child() const noexcept;

  // ---- loop thread ----
  /// The loop thread's body (loop_thread.cpp).
  void thread_main(LoopThread where) noexcept;
  CommandDrain& drain() noexcept { return drain_; }
  /// A drain handler's work: run what was queued.
  void run_commands() noexcept {
    if (!loop_thread_.slots_to_clear.empty()) clear_slots();
    drain_.drain(admission_);
  }
  /// The public (co_spawn) path: empties the task's cancellation slot once co_spawn's
  /// coroutine thread is gone (at the next drain, or the loop's end). The slot holds
  /// co_spawn's own cancellation handler, which holds a copy of the task's executor, which
  /// holds the task: left there, the task would keep itself alive.
  void clear_slot_later(TaskBase& task, Ref<StateBase> keep) noexcept;
  /// The wake-up posted to a borrowed io_context: drains on the loop thread; elsewhere it
  /// is a wake-up left from before the stop, or a sign that another thread runs the
  /// io_context (reported, and handed back to the loop thread).
  void run_commands_borrowed() noexcept;
  Reporting& reporting() noexcept { return reporting_; }
  /// The pool for blocking work, started on first use.
  WorkerPool& workers();
  PendingWaits& waits() noexcept { return waits_; }
  bool owns_io() const noexcept { return io_.owned(); }

  // Tasks (tasks.cpp).
  void start_task(TaskBase& task) noexcept;
  /// Signals the cancel to a running coroutine task; true when this call cancelled it (false:
  /// it had ended, is no coroutine, or an earlier cancel had reached it).
  bool deliver_cancel(TaskBase& task, CancelCause cause) noexcept;
  void start_cancel_all(CancelAllState& group) noexcept;
  std::vector<TaskInfo> in_flight_snapshot() const;
  std::optional<std::exception_ptr> conclude(TaskBase& task, std::exception_ptr error) noexcept;
  void task_left(TaskBase& task) noexcept;
  void recount_completed_as_failed() noexcept { counters_.recount_completed_as_failed(); }
  void reject(TaskBase& task) noexcept;
  void escaped_task_stretch(TaskBase& task, std::exception_ptr error) noexcept;
  bool begin_posted_call(const TaskLabel& label, std::chrono::steady_clock::time_point now) noexcept;
  void end_posted_call(std::exception_ptr error) noexcept;
  void discard_posted_call() noexcept;
  /// The stop's command reached the loop (stop.cpp).
  void execute_stop() noexcept;
  /// A lifecycle coroutine ended; the io_context stops once the stop has finished and none
  /// is left.
  void sequence_ended() noexcept;

private:
  class StopCommand final : public Command {
  public:
    void execute(Engine& engine) noexcept override { LoopCore::of(engine).execute_stop(); }
    void discard(Engine&) noexcept override {}
  };

  // Tasks (tasks.cpp).
  bool stop_refuses_queued_work() noexcept;
  void cancel_queued_at_stop(TaskBase& task) noexcept;
  void cancelled_before_start(TaskBase& task) noexcept;
  void refuse_posted_call() noexcept;
  void reject_at_call(TaskBase& task) noexcept;

  // The start (start.cpp).
  bool begin_start() noexcept;
  bool start_needs_no_wait() const noexcept;
  void mark_started() noexcept;
  void fail_without_thread() noexcept;
  std::exception_ptr set_up_own_thread() noexcept;
  void check_runs_on_caller() const;
  void begin_loop_thread(LoopThread where) noexcept;
  boost::asio::awaitable<void> start_sequence(std::exception_ptr setup_error);

  // Lifecycle coroutines (loop_thread.cpp).
  void spawn_sequence(boost::asio::awaitable<void> sequence);
  void stop_io_when_idle() noexcept;
  void enter(Phase phase) noexcept { phase_.store(phase, std::memory_order_release); }
  boost::asio::awaitable<std::exception_ptr> run_hook(const Hook& hook, std::chrono::steady_clock::time_point deadline,
                                                      const char* which);
  boost::asio::awaitable<bool> wait_until(const std::function<bool()>& done,
                                          std::chrono::steady_clock::time_point deadline);
  void notify_progress() noexcept;

  // The stop (stop.cpp).
  /// Walks kStopSteps: the on_stop parts of the first `hooks_started` entries (in reverse),
  /// the drain, the cancel, the waits; then closes the queue.
  boost::asio::awaitable<void> stop_sequence(std::size_t hooks_started);
  boost::asio::awaitable<void> run_stop_step(Phase phase, std::size_t hooks_started,
                                             std::chrono::steady_clock::time_point deadline);
  /// Waits for the loop thread's end, joins it (or detaches it past `deadline`); once, a
  /// second caller waits for the first. Returns whether it joined.
  bool join_thread(std::chrono::steady_clock::time_point deadline);
  const char* refused_start() const noexcept;
  boost::asio::awaitable<void> cancel_in_flight(std::chrono::steady_clock::time_point deadline);
  /// The one abandon path: settles a task that still runs as `final` (abandoned or dropped)
  /// with `error`; it is never resumed on an owned io_context, and is kept until its frame
  /// is gone.
  void give_up(TaskBase& task, TaskStage final, const std::exception_ptr& error) noexcept;
  void give_up_in_flight(bool dropped) noexcept;
  void finalize() noexcept;
  void end_of_thread() noexcept;
  void clear_slots() noexcept;
  SystemThread create_own_thread();

  LoopOptions options_;
  std::atomic<BackgroundLoop*> owner_{nullptr};
  const std::uint64_t serial_;
  LoopCore* prev_live_ = nullptr;  // the registry of live loops (live_loops())
  LoopCore* next_live_ = nullptr;
  std::atomic<Phase> phase_{Phase::created};
  std::atomic<bool> forked_away_{false};
  LoopIo io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  HookList hooks_;
  std::shared_ptr<WorkerPool> workers_;        // loop thread creates; stopped after the loop ends
  std::weak_ptr<WorkerPool> retired_workers_;  // set as the loop ends, for wait_released()
  Counters counters_;
  Admission admission_;
  CommandDrain drain_;
  Reporting reporting_;
  InFlight in_flight_;
  PendingWaits waits_;
  GivenUp given_up_;
  Latches latches_;
  OwnThread own_thread_;
  LoopThreadState loop_thread_;  // loop thread only
  StopCommand stop_command_;

  friend class Registry;
};

}  // namespace loopbridge::detail

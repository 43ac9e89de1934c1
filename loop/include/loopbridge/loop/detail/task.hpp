#pragma once

#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/call_rules.hpp>
#include <loopbridge/loop/detail/command.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/recycled_memory.hpp>
#include <loopbridge/loop/detail/task_stage.hpp>
#include <loopbridge/loop/detail/task_state.hpp>
#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/source_location.hpp>
#include <loopbridge/loop/stop_token.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace loopbridge::detail {

enum class TaskKind : std::uint8_t { task, detached, hook };

/// A submission's name (SubmitOptions::name): one pointer, null for the many submissions
/// that have none.
class TaskName {
public:
  TaskName() noexcept = default;
  explicit TaskName(std::string name)
      : text_(name.empty() ? nullptr : std::make_unique<const std::string>(std::move(name))) {}

  bool empty() const noexcept { return text_ == nullptr; }
  /// The name; empty if it has none.
  std::string_view view() const noexcept { return text_ ? std::string_view(*text_) : std::string_view(); }

private:
  std::unique_ptr<const std::string> text_;
};

/// What identifies a submission in stats, stall reports and the in-flight list.
struct TaskLabel {
  TaskName name;
  source_location where;
  std::chrono::steady_clock::time_point submitted_at;
};

class TaskBase;

/// Cancels one task; embedded in the task, so cancel() allocates nothing.
class CancelCommand final : public Command {
public:
  explicit CancelCommand(TaskBase& task) : task_(task) {}
  void execute(Engine& engine) noexcept override;
  void discard(Engine& engine) noexcept override;

private:
  TaskBase& task_;
};

/// The loop-thread side of a task: its stage, its place among the tasks in flight, its
/// cancellation signal. Its typed result and callable live in the Task that derives from it.
class TaskBase : public Command {
public:
  /// `engine` must outlive the task's time on the loop; afterwards only a caller that keeps
  /// it alive (a TaskHandle) may use it (to cancel).
  TaskBase(Engine& engine, TaskKind kind, bool is_coroutine) noexcept
      : coroutine(is_coroutine), kind_(kind), engine_(engine) {}

  void execute(Engine& engine) noexcept override;
  void discard(Engine& engine) noexcept override;

  TaskStage stage() const noexcept { return stage_.load(std::memory_order_acquire); }
  /// Moves the stage from `from` to `to`; false if it was elsewhere.
  bool advance(TaskStage from, TaskStage to) noexcept {
    return stage_.compare_exchange_strong(from, to, std::memory_order_acq_rel);
  }
  /// Loop thread: the task ends in `final` whatever request a host made meanwhile.
  TaskStage finish(TaskStage final) noexcept { return stage_.exchange(final, std::memory_order_acq_rel); }

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
  bool cancel_in_progress() const noexcept { return stage() == TaskStage::cancelling_unstarted; }
  /// Returns once no cancel is destroying the task's callable any more.
  void wait_for_canceller() const noexcept;

  /// Loop thread: starts the work (runs a callable inline, spawns a coroutine).
  virtual void run() noexcept = 0;
  /// Settles with an exception, without touching the callable's result.
  virtual void settle_exception(std::exception_ptr error) noexcept = 0;
  /// Destroys the stored callable (on the loop thread, or on the thread that cancelled the
  /// task before it started) and detaches the task from its stop token.
  void drop_function() noexcept {
#if LOOPBRIDGE_HAS_STOP_TOKEN
    if (extras_) extras_->stop_link.reset();
#endif
    drop_callable();
  }
#if LOOPBRIDGE_HAS_STOP_TOKEN
  /// Links a std::stop_token: a stop request cancels the task. Before the task is queued.
  void link_stop_token(std::stop_token token);
#endif
  virtual StateBase& state() noexcept = 0;

  Engine& engine() const noexcept { return engine_; }
  TaskKind kind() const noexcept { return kind_; }
  CancelCause cancel_cause() const noexcept { return cancel_cause_.load(std::memory_order_relaxed); }
  void set_cancel_cause(CancelCause cause) noexcept { cancel_cause_.store(cause, std::memory_order_relaxed); }

  /// The context its work runs with: captured from the submitting thread, then what a
  /// ContextScope inside its coroutine installs (null: empty).
  std::shared_ptr<const ContextData> context() const noexcept {
    return extras_ ? extras_->context : std::shared_ptr<const ContextData>();
  }
  /// Before the task is queued, or on the loop thread inside its work. Throws only
  /// std::bad_alloc (never for an empty context on a task that has none).
  void set_context(std::shared_ptr<const ContextData> context) {
    if (context || extras_) extras().context = std::move(context);
  }
  /// Loop thread: what escaped a stretch of its coroutine (escaped_task_stretch), kept
  /// unless memory ran out; null if nothing did.
  std::exception_ptr escaped_error() const noexcept { return extras_ ? extras_->escaped_error : nullptr; }
  void keep_escaped_error(std::exception_ptr error) noexcept;

  /// Coroutines are tracked in flight; callables run to their end inside one command.
  const bool coroutine;

protected:
  /// Task: whether its stored callable is still there (kept here, in the bytes beside the
  /// other flags, rather than beside the callable).
  bool callable_alive_ = false;

private:
  const TaskKind kind_;
  std::atomic<TaskStage> stage_{TaskStage::queued};
  // Written by the thread that moves the task into a cancel stage, read when it settles.
  std::atomic<CancelCause> cancel_cause_{CancelCause::cancel};

public:
  TaskLabel label;
  /// The host thread that submitted this task, for call_host (set when it is queued; empty
  /// when a loop thread submitted it).
  Ref<RefCounted> host_waiter;
  /// Set for a coroutine task on a borrowed io_context: whoever runs that io_context after
  /// the loop is gone may resume what the task left there (its own frame when abandoned, a
  /// coroutine it co_spawned on its executor), which still reaches its loop.
  Ref<RefCounted> keeps_loop;

  // Loop-thread bookkeeping, the engine's.
  TaskBase* prev_in_flight = nullptr;
  TaskBase* next_in_flight = nullptr;
  std::uint64_t start_seq = 0;
  boost::asio::cancellation_signal cancel_signal;

protected:
  ~TaskBase() = default;

private:
  virtual void drop_callable() noexcept = 0;

#if LOOPBRIDGE_HAS_STOP_TOKEN
  struct CancelOnStop {
    TaskBase* task;
    void operator()() const noexcept { task->request_cancel_any_thread(CancelCause::stop_token); }
  };
#endif

  /// What few tasks carry, in a block of its own made the first time one of them is set,
  /// so that the many tasks without them stay small while they wait.
  struct Extras {
    std::shared_ptr<const ContextData> context;
    std::exception_ptr escaped_error;
#if LOOPBRIDGE_HAS_STOP_TOKEN
    // Destroyed (so deregistered) before the task settles: a stop request never reaches a
    // settled task, nor a loop that has gone.
    std::optional<std::stop_callback<CancelOnStop>> stop_link;
#endif
  };
  Extras& extras() {
    if (!extras_) extras_ = std::make_unique<Extras>();
    return *extras_;
  }

  std::unique_ptr<Extras> extras_;
  Engine& engine_;
  CancelCommand cancel_command_{*this};
};

}  // namespace loopbridge::detail

#include <loopbridge/loop/detail/coroutines.hpp>

namespace loopbridge::detail {

/// One submitted task: its result state, its loop bookkeeping and its callable, in one
/// allocation.
template <class T, class F>
class Task final : public TypedState<T>, public TaskBase {
public:
  using value_type = T;
  static constexpr bool is_coroutine = task_traits<F>::coroutine;

  /// Starts with one reference, the creator's; each further owner (the queue, a handle)
  /// adds its own. F is constructed in place from `parts` (the callable, then the
  /// arguments bound to it).
  template <class... Parts>
  Task(Engine& engine, TaskKind kind, Parts&&... parts) : TypedState<T>(1), TaskBase(engine, kind, is_coroutine) {
    ::new (static_cast<void*>(&fn_)) F(std::forward<Parts>(parts)...);
    callable_alive_ = true;
  }
  ~Task() override { drop_callable(); }

  void run() noexcept override {
    if constexpr (is_coroutine) {
      using Driver = TaskDriver<Task>;
      std::optional<typename Driver::Body> body;
      std::exception_ptr error;
      try {
        body.emplace(make_body());
      } catch (...) {
        error = std::current_exception();
      }
      // Settled after the catch has ended: the exception is not touched here once a host
      // can see it.
      if (error) {
        complete(std::nullopt, std::move(error));
        return;
      }
      Driver::start(*this, std::move(*body));
    } else {
      std::optional<Stored<T>> value;
      std::exception_ptr error;
      try {
        if constexpr (std::is_void_v<T>) {
          std::invoke(fn_);
        } else {
          value.emplace(std::invoke(fn_));
        }
      } catch (...) {
        error = std::current_exception();
      }
      complete(std::move(value), std::move(error));
    }
  }

  void settle_exception(std::exception_ptr error) noexcept override { this->set_exception(std::move(error)); }
  void drop_callable() noexcept override {
    if (std::exchange(callable_alive_, false)) fn_.~F();
  }
  StateBase& state() noexcept override { return *this; }
  bool request_cancel(CancelCause cause) noexcept override { return request_cancel_any_thread(cause); }
  bool left_running_by_stop() const noexcept override { return is_given_up(stage()); }

  /// The coroutine's body (coroutine tasks): what the callable returns.
  auto make_body() { return std::invoke(fn_); }

  // The callable's captures are destroyed on the loop thread before the result is published,
  // so a host that sees the result also sees them gone.
  void complete(std::optional<Stored<T>>&& value, std::exception_ptr error) noexcept {
    this->drop_function();
    std::optional<std::exception_ptr> verdict = conclude(*this, std::move(error));
    if (!verdict) return;
    if (kind() == TaskKind::detached) {
      // Nobody holds a handle to a posted task: nothing to publish.
    } else if (*verdict) {
      this->set_exception(std::move(*verdict));
    } else {
      try {
        if constexpr (std::is_void_v<T>) {
          this->set_value();
        } else {
          this->set_value(std::move(value).value());  // a verdict without an error has a value
        }
      } catch (...) {
        recount_completed_as_failed(*this);  // moving the value into the state threw
        this->set_exception(std::current_exception());
      }
    }
    // Only now, so that whoever waits for this task to have left (cancel_all, stop) finds
    // its handle settled.
    task_left(*this);
  }

protected:
  void report_unread_outcome() noexcept override {
    if (stage() == TaskStage::failed) {
      report_error(engine(), this->stored_exception(), "a failed task whose handle was dropped unread");
    }
  }

private:
  // Alive while callable_alive_ (a union member rather than a std::optional, whose flag
  // would take a word of its own beside it).
  union {
    F fn_;
  };
};

/// A posted plain callable, without its type: nobody waits on it and it runs to its end
/// inside its command, so it needs no shared state, no reference count and no
/// cancellation signal.
class PostedCallBase : public Command {
public:
  explicit PostedCallBase(TaskLabel label) noexcept : context_(this_thread_context()), label_(std::move(label)) {}
  virtual ~PostedCallBase() = default;

  /// Runs the call (timed, counted, with the poster's context), then frees it.
  void execute(Engine& engine) noexcept final;
  /// Counts it as refused, reports it, and frees it.
  void discard(Engine& engine) noexcept final;

private:
  /// Runs the callable; what it throws goes to the error handler.
  virtual void invoke() = 0;
  /// Destroys the callable: its captures' destructors are part of the call's time.
  virtual void drop_callable() noexcept = 0;

  std::shared_ptr<const ContextData> context_;
  TaskLabel label_;
};

template <class F>
class PostedCall final : public PostedCallBase {
public:
  /// F is constructed in place from `parts` (the callable, then the arguments bound to it).
  template <class... Parts>
  PostedCall(TaskLabel label, Parts&&... parts)
      : PostedCallBase(std::move(label)), fn_(std::in_place, std::forward<Parts>(parts)...) {}

  // Made on the posting thread, freed on the loop thread. (An over-aligned callable takes
  // the aligned forms, which go to the global ones.)
  static void* operator new(std::size_t size) { return RecycledMemory::allocate(size); }
  static void operator delete(void* block, std::size_t size) noexcept { RecycledMemory::deallocate(block, size); }
  static void* operator new(std::size_t size, std::align_val_t align) { return ::operator new(size, align); }
  static void operator delete(void* block, std::align_val_t align) noexcept { ::operator delete(block, align); }

private:
  void invoke() override { std::invoke(*fn_); }
  void drop_callable() noexcept override { fn_.reset(); }

  std::optional<F> fn_;
};

}  // namespace loopbridge::detail

#pragma once

#include <loopbridge/loop/detail/loop_core.hpp>
#include <loopbridge/loop/detail/recycled_memory.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/version.hpp>

#include <functional>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace loopbridge::detail {

template <class T>
struct is_awaitable : std::false_type {};
template <class T, class Executor>
struct is_awaitable<boost::asio::awaitable<T, Executor>> : std::true_type {};

template <class T>
struct awaitable_value;
template <class T, class Executor>
struct awaitable_value<boost::asio::awaitable<T, Executor>> {
  using type = T;
  using executor = Executor;
};

/// What a submitted F runs: a coroutine function (returns awaitable<T>), a plain callable
/// (returns T), or an awaitable<T> object itself.
template <class F>
struct task_traits {
  using invoke_result = std::invoke_result_t<F&>;
  static constexpr bool coroutine = is_awaitable<invoke_result>::value;
  using result = typename std::conditional_t<coroutine, awaitable_value<invoke_result>,
                                             std::type_identity<invoke_result>>::type;
};

/// Lets an awaitable<T> object be submitted like a coroutine function.
template <class Awaitable>
class AwaitableFunction {
public:
  explicit AwaitableFunction(Awaitable a) : awaitable_(std::move(a)) {}
  Awaitable operator()() { return std::move(awaitable_); }

private:
  Awaitable awaitable_;
};

template <class F>
using function_type_for =
    std::conditional_t<is_awaitable<std::decay_t<F>>::value, AwaitableFunction<std::decay_t<F>>, std::decay_t<F>>;

/// Refuses null function pointers and empty function wrappers (std::function and the like:
/// classes with their own operator bool).
template <class F>
void check_callable(const F& fn) {
  bool empty = false;
  if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
    empty = fn == nullptr;
  } else if constexpr (requires { &F::operator bool; }) {
    empty = !static_cast<bool>(fn);
  }
  if (empty) throw InvalidArgument("an empty callable was submitted");
}

/// The coroutine that drives a task: the bottom frame of its Asio coroutine thread.
using EntryPoint = boost::asio::awaitable<boost::asio::detail::awaitable_thread_entry_point, boost::asio::any_io_executor>;

#if BOOST_ASIO_VERSION == 102600  // Asio 1.26 (Boost 1.81): the frame layout below is its own
#define LOOPBRIDGE_BODY_WITHOUT_RETHROW 1

/// Runs a task's body (an Asio awaitable<T>) to its end and hands its outcome over without
/// rethrowing it. A plain `co_await body` rethrows the body's exception into the awaiting
/// frame: a second throw for every task that fails, and a stop that cancels thousands of
/// tasks spends most of its time in the unwinder. Built on Asio 1.26's coroutine frames;
/// other Asio versions take the plain `co_await`.
template <class T>
class BodyRun {
public:
  using Executor = boost::asio::any_io_executor;
  using Frame = boost::asio::detail::awaitable_frame<T, Executor>;
  using FrameBase = boost::asio::detail::awaitable_frame_base<Executor>;

  explicit BodyRun(boost::asio::awaitable<T, Executor>& body) noexcept : frame_(frame_of(body)) {}

  /// `co_await` it from the task's driver frame: pushes the body onto the coroutine thread
  /// as `co_await body` would; the driver resumes when the body has ended.
  auto start() const noexcept {
    return [frame = frame_](FrameBase* caller) -> boost::asio::detail::awaitable_thread<Executor>* {
      frame->push_frame(caller);
      return nullptr;
    };
  }

  /// After the body ended: its exception, if it threw (taken out of its frame).
  std::exception_ptr take_exception() noexcept { return PendingException::take(*frame_); }

  /// After the body ended without an exception: its value.
  T take_value() { return frame_->get(); }

private:
  // Protected in Asio's frame; read through a derived class's member pointer.
  struct PendingException : FrameBase {
    static std::exception_ptr take(FrameBase& frame) noexcept {
      return std::exchange(frame.*(&PendingException::pending_exception_), nullptr);
    }
  };

  static Frame* frame_of(boost::asio::awaitable<T, Executor>& body) noexcept {
    // awaitable<T> holds its frame pointer and nothing else, so the object and that pointer
    // are pointer-interconvertible.
    static_assert(std::is_standard_layout_v<boost::asio::awaitable<T, Executor>> &&
                  sizeof(boost::asio::awaitable<T, Executor>) == sizeof(Frame*));
    return *reinterpret_cast<Frame**>(&body);
  }

  Frame* frame_;
};
#endif

/// Starts `entry` as a new Asio coroutine thread of `task` on the calling (loop) thread,
/// with the task's signal as the parent cancellation slot. The thread's executor carries
/// the task (see task_of), so code inside can find its task, its context and its host. This is co_spawn without its entry point: no dispatch, no
/// work guards, no completion handler and no final post, and so no place after the body
/// where a late cancellation could throw out of io_context::run().
void launch(EntryPoint entry, TaskBase& task);

/// A posted plain callable: nobody waits on it and it runs to its end inside its command,
/// so it needs no shared state, no reference count and no cancellation signal.
template <class F>
class PostedCall final : public Command {
public:
  template <class G>
  PostedCall(G&& fn, TaskLabel label)
      : fn_(std::in_place, std::forward<G>(fn)), context_(this_thread_context()), label_(std::move(label)) {}

  // Made on the posting thread, freed on the loop thread. (An over-aligned callable takes
  // the aligned forms, which go to the global ones.)
  static void* operator new(std::size_t size) { return RecycledMemory::allocate(size); }
  static void operator delete(void* block, std::size_t size) noexcept { RecycledMemory::deallocate(block, size); }
  static void* operator new(std::size_t size, std::align_val_t align) { return ::operator new(size, align); }
  static void operator delete(void* block, std::align_val_t align) noexcept { ::operator delete(block, align); }

  void execute(LoopCore& core) noexcept override {
    std::unique_ptr<PostedCall> self(this);
    std::exception_ptr error;
    {
      RunScope scope(core, label_, RunScope::Kind::command);
      if (!core.begin_posted_call(label_, scope.started())) return;
      auto outer = exchange_this_thread_context(std::move(context_));
      try {
        std::invoke(*fn_);
      } catch (...) {
        error = std::current_exception();
      }
      fn_.reset();  // its captures' destructors are part of the call's time
      exchange_this_thread_context(std::move(outer));
    }
    core.end_posted_call(std::move(error));
  }

  void discard(LoopCore& core) noexcept override {
    std::unique_ptr<PostedCall> self(this);
    core.discard_posted_call();
  }

private:
  std::optional<F> fn_;
  std::shared_ptr<const ContextData> context_;
  TaskLabel label_;
};

/// One submitted task: its result state, its loop bookkeeping and its callable, in one
/// allocation.
template <class T, class F>
class Task final : public TypedState<T>, public TaskBase {
public:
  static constexpr bool coroutine = task_traits<F>::coroutine;

  /// Starts with one reference, the creator's; each further owner (the queue, a handle)
  /// adds its own.
  template <class G>
  Task(LoopCore& core, TaskKind kind, G&& fn)
      : TypedState<T>(1), TaskBase(core, kind, coroutine), fn_(std::forward<G>(fn)) {}

  void run() noexcept override {
    if constexpr (coroutine) {
      launch(drive(Ref<Task>::share(this)), *this);
    } else {
      std::optional<Stored<T>> value;
      std::exception_ptr error;
      try {
        if constexpr (std::is_void_v<T>) {
          std::invoke(*fn_);
        } else {
          value.emplace(std::invoke(*fn_));
        }
      } catch (...) {
        error = std::current_exception();
      }
      complete(std::move(value), std::move(error));
    }
  }

  void settle_exception(std::exception_ptr error) noexcept override { this->set_exception(std::move(error)); }
  void drop_callable() noexcept override { fn_.reset(); }
  StateBase& state() noexcept override { return *this; }
  bool request_cancel(CancelCause cause) noexcept override { return request_cancel_any_thread(cause); }
  bool left_running_by_stop() const noexcept override { return left_by_stop; }

protected:
  void report_unread_outcome() noexcept override {
    if (failed_own) {
      core().report_error(this->stored_exception(), "a failed task whose handle was dropped unread");
    }
  }

private:
  // The callable's captures are destroyed on the loop thread before the result is published,
  // so a host that sees the result also sees them gone.
  void complete(std::optional<Stored<T>>&& value, std::exception_ptr error) noexcept {
    this->drop_function();
    std::optional<std::exception_ptr> verdict = core().conclude(*this, std::move(error));
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
        core().recount_completed_as_failed();  // moving the value into the state threw
        this->failed_own = true;
        this->set_exception(std::current_exception());
      }
    }
    // Only now, so that whoever waits for this task to have left (cancel_all, stop) finds
    // its handle settled.
    core().task_left(*this);
  }

  /// Settles the task if its frame is destroyed before the body ended: Asio gives up a
  /// coroutine whose awaited operation threw from its initiation, or dropped its handler.
  struct FrameGuard {
    Task& task;
    ~FrameGuard() {
      if (!task.settled) {
        std::exception_ptr error = task.escaped_error;
        if (!error) {
          error = std::make_exception_ptr(TaskAbandoned(
              "task's coroutine was destroyed before it finished: an operation it awaited dropped its handler"));
        }
        task.complete(std::nullopt, std::move(error));
      }
      // Asio is done with the slot once the body's frames are gone. Freeing the cancellation
      // state it keeps there now, on the thread that made it, lets Asio recycle the block for
      // the next task; left to the task's destructor, it would be freed on whichever thread
      // drops the task last, and every coroutine task would cost the loop thread a malloc.
      // Not after a cancel: the task may have ended inside that cancel's emit, which is
      // still running the state. Nor when the stop gave the task up: no task follows to reuse
      // the block, so the stop does not pay for the free.
      if (!task.cancel_delivered && !task.given_up) task.cancel_signal.slot().clear();
    }
  };

  // Owns a reference until its frame is gone: Asio touches the cancellation slot (in the
  // task) until the body has ended.
  static EntryPoint drive(Ref<Task> self) {
    FrameGuard guard{*self};  // destroyed after the body's frames
    std::optional<Stored<T>> value;
    std::exception_ptr error;
    try {
      // Built in its own statement: g++ 12 may destroy temporaries of a co_await
      // full-expression twice.
      auto body = std::invoke(*self->fn_);
#ifdef LOOPBRIDGE_BODY_WITHOUT_RETHROW
      // Unlike `co_await body`, this skips Asio's throw-if-cancelled check: nothing can have
      // cancelled the task yet (its launch runs the driver up to here synchronously).
      BodyRun<T> run(body);
      auto start = run.start();
      co_await std::move(start);
      error = run.take_exception();
      if constexpr (!std::is_void_v<T>) {
        if (!error) value.emplace(run.take_value());
      }
#else
      if constexpr (std::is_void_v<T>) {
        co_await std::move(body);
      } else {
        value.emplace(co_await std::move(body));
      }
#endif
    } catch (...) {
      error = std::current_exception();
    }
    self->complete(std::move(value), std::move(error));
  }

  std::optional<F> fn_;
};

}  // namespace loopbridge::detail

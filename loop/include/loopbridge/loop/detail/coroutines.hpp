#pragma once

// How a task's coroutine is started and driven: the one file that uses Asio's internals,
// and the public-API path that replaces them.
//
// The internals path starts the task's driver coroutine as the bottom frame of a new Asio
// coroutine thread (awaitable_handler), without co_spawn's entry point: no dispatch, no work
// guards, no completion handler and no final post. On Asio 1.26 it also hands the body's
// outcome over without rethrowing it (a second throw per failed or cancelled task). It is
// built on the Asio releases it was checked against (1.26 to 1.36, Boost 1.81 to 1.89).
//
// The public path co_spawns the same driver with the task's cancellation slot bound to its
// completion handler. It is taken when LOOPBRIDGE_ASIO_INTERNALS is 0 (the CMake option of
// that name) and on any Asio release outside that range, so that a new Asio that changes its
// internals costs speed, not the build.

#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/ref.hpp>
#include <loopbridge/loop/detail/task_stage.hpp>
#include <loopbridge/loop/detail/task_state.hpp>
#include <loopbridge/loop/errors.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/version.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#ifndef LOOPBRIDGE_ASIO_INTERNALS
#define LOOPBRIDGE_ASIO_INTERNALS 1
#endif
#if LOOPBRIDGE_ASIO_INTERNALS && BOOST_ASIO_VERSION >= 102600 && BOOST_ASIO_VERSION <= 103600
#define LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS 1
#else
#define LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS 0
#endif

namespace loopbridge::detail {

class TaskBase;

#if LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS
}  // namespace loopbridge::detail

#include <boost/asio/use_awaitable.hpp>  // awaitable_handler

namespace loopbridge::detail {

/// The coroutine that drives a task: the bottom frame of its Asio coroutine thread.
using TaskCoroutine =
    boost::asio::awaitable<boost::asio::detail::awaitable_thread_entry_point, boost::asio::any_io_executor>;

/// Starts `coroutine` as a new Asio coroutine thread on the calling (loop) thread, with
/// `slot` as its parent cancellation slot: co_spawn without its entry point, so there is no
/// place after the body where a late cancellation could throw out of io_context::run(). A
/// template only so that it is compiled where it is used (loopbridge's launch()), not in
/// every file that includes this one.
///
/// With `first`, that frame runs first, above the bottom one, as if the bottom frame had
/// co_awaited it before its own first line: the bottom frame needs no suspension of its
/// own (nor the frame space one takes) to run it.
template <class Executor = boost::asio::any_io_executor>
void start_coroutine_thread(TaskCoroutine coroutine, const Executor& executor, boost::asio::cancellation_slot slot,
                            boost::asio::detail::awaitable_frame_base<Executor>* first = nullptr) {
  boost::asio::detail::awaitable_handler<Executor, void> thread(std::move(coroutine), executor, slot,
                                                                boost::asio::cancellation_state(slot));
  if (first != nullptr) {
    thread.entry_point()->attach_thread(&thread);
    first->push_frame(thread.entry_point());
  }
  thread.launch();
}

#if BOOST_ASIO_VERSION == 102600  // Asio 1.26 (Boost 1.81): the frame layout below is its own
#define LOOPBRIDGE_BODY_WITHOUT_RETHROW 1

/// Runs a task's body (an Asio awaitable<T>) to its end and hands its outcome over without
/// rethrowing it. A plain `co_await body` rethrows the body's exception into the awaiting
/// frame: a second throw for every task that fails, and a stop that cancels thousands of
/// tasks spends most of its time in the unwinder. The body's frame is started above the
/// driver's (start_coroutine_thread's `first`); the driver runs once the body has ended.
template <class T>
struct BodyRun {
  using Executor = boost::asio::any_io_executor;
  using Body = boost::asio::awaitable<T, Executor>;
  using Frame = boost::asio::detail::awaitable_frame<T, Executor>;
  using FrameBase = boost::asio::detail::awaitable_frame_base<Executor>;

  static Frame* frame_of(Body& body) noexcept {
    // awaitable<T> holds its frame pointer and nothing else, so the object and that pointer
    // are pointer-interconvertible.
    static_assert(std::is_standard_layout_v<Body> && sizeof(Body) == sizeof(Frame*));
    return *reinterpret_cast<Frame**>(&body);
  }

  /// After the body ended: destroys its frame (the coroutine's parameters with it), then
  /// gives `task` the body's exception or value.
  template <class Task>
  static void complete(Task& task, Body&& ended) noexcept {
    std::optional<Stored<T>> value;
    std::exception_ptr error;
    {
      Body body = std::move(ended);
      Frame* frame = frame_of(body);
      error = std::exchange(frame->*(&PendingException::pending_exception_), nullptr);
      if constexpr (!std::is_void_v<T>) {
        if (!error) {
          try {
            value.emplace(frame->get());
          } catch (...) {
            error = std::current_exception();
          }
        }
      }
    }
    task.complete(std::move(value), std::move(error));
  }

private:
  // Protected in Asio's frame; read through a derived class's member pointer.
  struct PendingException : FrameBase {
    using FrameBase::pending_exception_;
  };
};
#endif

#else  // the public path

/// The coroutine that drives a task, co_spawned on its loop.
using TaskCoroutine = boost::asio::awaitable<void, boost::asio::any_io_executor>;

#endif

#ifdef LOOPBRIDGE_BODY_WITHOUT_RETHROW
/// The frame of a task's body, started above its driver's.
using BodyFrame = boost::asio::detail::awaitable_frame_base<boost::asio::any_io_executor>;
#else
using BodyFrame = void;
#endif

/// Starts a task's driver coroutine on the calling (loop) thread, with the task's signal as
/// its cancellation slot; its executor carries the task (see task_of). `body`, if not null,
/// runs first, above the driver (start_coroutine_thread's `first`).
void launch(TaskCoroutine coroutine, TaskBase& task, BodyFrame* body);

/// The coroutine that drives a Task's body and completes the task with its outcome. Its
/// frame stays with every pending task, so it keeps as little as it can across the wait.
template <class Task>
class TaskDriver {
public:
  using T = typename Task::value_type;

  /// A reference to the task, owned by the driver's frame (as its parameter, so destroyed
  /// after the body's frames): Asio touches the task's cancellation slot until the body has
  /// ended. Settles the task if the frame goes before the body ended: Asio gives up a
  /// coroutine whose awaited operation threw from its initiation, or dropped its handler.
  class Link {
  public:
    explicit Link(Task& task) noexcept : task_(&task) { task.add_ref(); }
    Link(Link&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
    Link& operator=(Link&&) = delete;
    ~Link() {
      if (task_ == nullptr) return;
      settle_if_abandoned(*task_);
      task_->release();
    }
    Task* operator->() const noexcept { return task_; }
    Task& operator*() const noexcept { return *task_; }

  private:
    Task* task_;
  };

  /// The task's body: what its callable returned.
  using Body = decltype(std::declval<Task&>().make_body());

  /// Starts `body` for `task` on the calling (loop) thread.
  static void start(Task& task, Body body) {
#ifdef LOOPBRIDGE_BODY_WITHOUT_RETHROW
    BodyFrame* first = BodyRun<T>::frame_of(body);
#else
    BodyFrame* first = nullptr;
#endif
    launch(drive(Link(task), std::move(body)), task, first);
  }

private:
  static TaskCoroutine drive(Link task, Body body) {
#ifdef LOOPBRIDGE_BODY_WITHOUT_RETHROW
    // Resumed once the body, started above this frame, has ended. Unlike `co_await body`,
    // nothing rethrows its exception, and there is no throw-if-cancelled check (nothing can
    // have cancelled the task before its body started).
    BodyRun<T>::complete(*task, std::move(body));
    co_return;
#else
    // Asio destroys the body's frame before this co_await returns. The task settles after
    // the catch has ended: the exception is not touched here once a host can see it.
    std::optional<Stored<T>> value;
    std::exception_ptr error;
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(body);
      } else {
        value.emplace(co_await std::move(body));
      }
    } catch (...) {
      error = std::current_exception();
    }
    task->complete(std::move(value), std::move(error));
#if !LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS
    // Settled: no cancel is delivered from here on. One that landed in the body's last
    // stretch must not reach co_spawn's final post, which would throw it out of
    // io_context::run().
    auto forget_cancel = boost::asio::this_coro::reset_cancellation_state();
    co_await forget_cancel;
#endif
#endif
  }

  static void settle_if_abandoned(Task& task) noexcept {
    if (!is_final(task.stage())) {
      std::exception_ptr error = task.escaped_error();
      if (!error) {
        error = std::make_exception_ptr(TaskAbandoned(
            "the task's coroutine was destroyed before it finished: an operation it awaited dropped its handler"));
      }
      task.complete(std::nullopt, std::move(error));
    }
#if LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS
    // Asio is done with the slot once the body's frames are gone. Freeing the cancellation
    // state it keeps there now, on the thread that made it, lets Asio recycle the block for
    // the next task; left to the task's destructor, it would be freed on whichever thread
    // drops the task last. Not after a cancel (the task may have ended inside that cancel's
    // emit, which still runs the state), nor when the stop gave the task up. (On the public
    // path the slot holds co_spawn's own handler, which its coroutine thread uses until the
    // end: it goes with the task.)
    const TaskStage stage = task.stage();
    if (stage == TaskStage::completed || stage == TaskStage::failed) task.cancel_signal.slot().clear();
#endif
  }
};

}  // namespace loopbridge::detail

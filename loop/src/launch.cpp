// How a task's coroutine runs on its loop: the executor that carries the task, and the
// stretches of work between its suspensions.

#include "loop_core.hpp"

#include <loopbridge/loop/detail/coroutines.hpp>

#if !LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#endif

#include <utility>

namespace loopbridge::detail {
namespace {

/// Runs one resumption of a task's coroutine as a timed stretch of that task.
template <class F>
struct Resumption {
  Ref<StateBase> keep;  // the task outlives the stretch even if its coroutine ends in it
  TaskBase* task;
  F resume;

  static void call(void* self) { (*static_cast<F*>(self))(); }
  // current_context() inside the coroutine is the task's on every stretch, not only the
  // first. Free for tasks without a context (a null pointer is copied).
  void operator()() { run_stretch(*task, &call, &resume); }
};

/// The executor of a task's coroutine: the loop's io_context executor, plus the task it
/// belongs to. Every resumption of the coroutine passes through execute(), so each one is
/// timed (stall detection), and task_of() finds the task from this_coro::executor.
template <class Inner>
class TaskExecutor {
public:
  // Each copy keeps the task's state alive: user code may keep the executor (a timer, a
  // co_spawned coroutine) long after the task itself has ended.
  TaskExecutor(Inner inner, TaskBase* task) noexcept
      : inner_(std::move(inner)), task_(task), keep_(Ref<StateBase>::share(&task->state())) {}

  TaskBase* task() const noexcept { return task_; }

  template <class Property>
  auto query(const Property& property) const noexcept
      -> decltype(boost::asio::query(std::declval<const Inner&>(), property)) {
    return boost::asio::query(inner_, property);
  }

  template <class Property>
  auto require(const Property& property) const
      -> TaskExecutor<std::decay_t<decltype(boost::asio::require(std::declval<const Inner&>(), property))>> {
    return {boost::asio::require(inner_, property), task_};
  }

  template <class Property>
  auto prefer(const Property& property) const
      -> TaskExecutor<std::decay_t<decltype(boost::asio::prefer(std::declval<const Inner&>(), property))>> {
    return {boost::asio::prefer(inner_, property), task_};
  }

  template <class F>
  void execute(F&& f) const {
    inner_.execute(Resumption<std::decay_t<F>>{Ref<StateBase>::share(&task_->state()), task_, std::forward<F>(f)});
  }

  friend bool operator==(const TaskExecutor& a, const TaskExecutor& b) noexcept {
    return a.task_ == b.task_ && a.inner_ == b.inner_;
  }
  friend bool operator!=(const TaskExecutor& a, const TaskExecutor& b) noexcept { return !(a == b); }

private:
  template <class>
  friend class TaskExecutor;

  Inner inner_;
  TaskBase* task_;
  Ref<StateBase> keep_;
};

using LaunchExecutor = TaskExecutor<boost::asio::io_context::executor_type>;

#if !LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS
/// co_spawn's completion: the driver catches everything, so only co_spawn's own machinery
/// could end with an error here. It keeps the task alive until its slot is cleared: a
/// release of Asio may complete co_spawn after everything else let go of the task (1.36
/// destroys the coroutine's executors first).
struct CoroutineEnded {
  TaskBase* task;
  Ref<StateBase> keep;
  void operator()(std::exception_ptr error) noexcept {
    LoopCore& core = LoopCore::of(*task);
    if (error) core.report_error(error, "a task's coroutine (co_spawn)");
    core.clear_slot_later(*task, std::move(keep));
  }
};
#endif

}  // namespace

void launch(TaskCoroutine coroutine, TaskBase& task, BodyFrame* body) {
  boost::asio::any_io_executor executor = LaunchExecutor(LoopCore::of(task).executor(), &task);
  try {
#ifdef LOOPBRIDGE_BODY_WITHOUT_RETHROW
    start_coroutine_thread(std::move(coroutine), executor, task.cancel_signal.slot(), body);
#else
    (void)body;  // null: the driver awaits the body itself
#if LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS
    start_coroutine_thread(std::move(coroutine), executor, task.cancel_signal.slot());
#else
    boost::asio::co_spawn(executor, std::move(coroutine),
                          boost::asio::bind_cancellation_slot(task.cancel_signal.slot(),
                                                              CoroutineEnded{&task, Ref<StateBase>::share(&task.state())}));
#endif
#endif
  } catch (...) {
    escaped_task_stretch(task, std::current_exception());
  }
}

TaskBase* task_of(const boost::asio::any_io_executor& executor) noexcept {
  const LaunchExecutor* tagged = executor.target<LaunchExecutor>();
  return tagged ? tagged->task() : nullptr;
}

bool is_task_state(const TaskBase* task, const StateBase& state) noexcept {
  return task != nullptr && &const_cast<TaskBase*>(task)->state() == &state;
}

void run_stretch(TaskBase& task, void (*resume)(void*), void* context) noexcept {
  const Ref<StateBase> keep = Ref<StateBase>::share(&task.state());  // its coroutine may end in the stretch
  LoopCore& core = LoopCore::of(task);
  // Given up by the stop on an owned io_context: its owner destroys `resume` unrun, and with
  // it the coroutine's frames.
  if (is_given_up(task.stage()) && core.owns_io()) return;
  RunScope scope(core.reporting(), core.drain(), task.label);
  TaskContextInstall install(task);
  try {
    resume(context);
  } catch (...) {
    core.escaped_task_stretch(task, std::current_exception());
  }
}

}  // namespace loopbridge::detail

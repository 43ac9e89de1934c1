// Tasks on the loop thread: starting them, cancelling them, recording how they ended; and
// the cancel requests that reach them from any thread.

#include "loop_core.hpp"

#include "thread_roles.hpp"

#include <boost/asio/multiple_exceptions.hpp>
#include <boost/throw_exception.hpp>

#include <thread>
#include <typeinfo>
#include <utility>

namespace loopbridge::detail {
namespace {

// Cancels of unstarted tasks this thread is inside (destroying their callables).
constinit thread_local int t_cancels_under_way = 0;

// What Asio throws into a coroutine whose operation a cancel ended.
bool is_abort(const boost::system::system_error& e) noexcept {
  return e.code() == boost::system::errc::operation_canceled;  // operation_aborted is ECANCELED
}

// Whether a cancelled task ended with the cancellation itself (not reported) or with an
// error of its own (reported): TaskCancelled, or Asio's operation_aborted (as
// boost::system::system_error, perhaps wrapped by boost::throw_exception). Any other error,
// a connection reset among them, is the task's own. Classified by type where the library
// allows it, without a rethrow: a stop cancelling thousands of tasks pays for every throw.
bool is_cancellation(const std::exception_ptr& error) {
#if defined(__GLIBCXX__)
  if (const std::type_info* type = error.__cxa_exception_type()) {
    // libstdc++'s exception_ptr holds the thrown object's address and nothing else.
    static_assert(sizeof(std::exception_ptr) == sizeof(void*));
    const void* object = *reinterpret_cast<const void* const*>(&error);
    if (*type == typeid(TaskCancelled)) return true;
    if (*type == typeid(boost::system::system_error)) {
      return is_abort(*static_cast<const boost::system::system_error*>(object));
    }
    if (*type == typeid(boost::wrapexcept<boost::system::system_error>)) {
      return is_abort(*static_cast<const boost::wrapexcept<boost::system::system_error>*>(object));
    }
  }
#endif
  try {
    std::rethrow_exception(error);
  } catch (const TaskCancelled&) {
    return true;
  } catch (const boost::asio::multiple_exceptions& e) {
    // Asio's awaitable operators (a && b) wrap the branches' cancellations, nested.
    return is_cancellation(e.first_exception());
  } catch (const boost::system::system_error& e) {
    return is_abort(e);
  } catch (...) {
    return false;
  }
}

}  // namespace

// ---------------------------------------------------------------- any thread

bool TaskBase::request_cancel_any_thread(CancelCause cause) noexcept {
  if (state().ready()) return false;
  // Once the stage moves the loop may drop its reference at any moment: hold one.
  const Ref<StateBase> keep = Ref<StateBase>::share(&state());
  if (advance(TaskStage::queued, TaskStage::cancelling_unstarted)) {
    // It never runs: settled now, as concurrent.futures cancels a pending future; the loop
    // only counts it when it takes the command.
    set_cancel_cause(cause);
    ++t_cancels_under_way;
    drop_function();
    --t_cancels_under_way;
    settle_exception(std::make_exception_ptr(cancellation(cause, /*while_running=*/false)));
    finish(TaskStage::cancelled);
    return true;
  }
  TaskStage stage = this->stage();
  if (stage == TaskStage::cancelling_unstarted) {
    // Another cancel is destroying the callable and settles the task once done: wait for it,
    // unless that cancel may be waiting for this very thread (a loop thread, or a thread that
    // is inside a cancel itself: a capture's destructor that cancels its own task).
    if (this_thread_core() == nullptr && t_cancels_under_way == 0) wait_for_canceller();
    return true;
  }
  // A plain callable that has started runs to its end: its outcome stands.
  if (coroutine && stage == TaskStage::running && advance(TaskStage::running, TaskStage::cancel_requested)) {
    set_cancel_cause(cause);  // published by the push
    state().add_ref();        // the queue's
    if (LoopCore::of(engine()).push(cancel_command_)) return true;
    // The loop closed its queue, so it has settled this task already.
    state().release();
    return false;
  }
  stage = this->stage();
  return stage == TaskStage::cancel_requested || stage == TaskStage::cancel_delivered;
}

bool TaskBase::claim_refusal() noexcept {
  if (advance(TaskStage::queued, TaskStage::refused)) return true;
  wait_for_canceller();
  return false;
}

void TaskBase::wait_for_canceller() const noexcept {
  while (cancel_in_progress()) std::this_thread::yield();
}

void TaskBase::keep_escaped_error(std::exception_ptr error) noexcept {
  try {
    extras().escaped_error = std::move(error);
  } catch (...) {
    // Out of memory: the task settles with TaskAbandoned instead (the error was reported).
  }
}

#if LOOPBRIDGE_HAS_STOP_TOKEN
void TaskBase::link_stop_token(std::stop_token token) {
  if (token.stop_possible()) extras().stop_link.emplace(std::move(token), CancelOnStop{this});
}
#endif

// ---------------------------------------------------------------- commands

void TaskBase::execute(Engine& engine) noexcept {
  LoopCore& core = LoopCore::of(engine);
  core.start_task(*this);
  if (state().release()) core.drain().batch_clock_moved();  // the queue's reference was the last: T and F went
}

void TaskBase::discard(Engine& engine) noexcept {
  LoopCore::of(engine).reject(*this);
  state().release();
}

void CancelCommand::execute(Engine& engine) noexcept {
  LoopCore::of(engine).deliver_cancel(task_, task_.cancel_cause());
  task_.state().release();
}

void CancelCommand::discard(Engine&) noexcept { task_.state().release(); }

void CancelAllState::execute(Engine& engine) noexcept {
  LoopCore::of(engine).start_cancel_all(*this);
  release();
}

void CancelAllState::discard(Engine&) noexcept {
  set_value(std::size_t{0});
  release();
}

void InFlightQuery::execute(Engine& engine) noexcept {
  try {
    set_value(LoopCore::of(engine).in_flight_snapshot());
  } catch (...) {
    set_exception(std::current_exception());
  }
  release();
}

void InFlightQuery::discard(Engine&) noexcept {
  set_value(std::vector<TaskInfo>{});
  release();
}

void PostedCallBase::execute(Engine& engine) noexcept {
  std::unique_ptr<PostedCallBase> self(this);
  LoopCore& core = LoopCore::of(engine);
  std::exception_ptr error;
  {
    RunScope scope(core.reporting(), core.drain(), label_, RunScope::Kind::command);
    if (!core.begin_posted_call(label_, scope.started())) return;
    auto outer = exchange_this_thread_context(std::move(context_));
    try {
      invoke();
    } catch (...) {
      error = std::current_exception();
    }
    drop_callable();  // its captures' destructors are part of the call's time
    exchange_this_thread_context(std::move(outer));
  }
  core.end_posted_call(std::move(error));
}

void PostedCallBase::discard(Engine& engine) noexcept {
  std::unique_ptr<PostedCallBase> self(this);
  LoopCore::of(engine).discard_posted_call();
}

// ---------------------------------------------------------------- loop thread

void LoopCore::start_task(TaskBase& task) noexcept {
  const bool hook = task.kind() == TaskKind::hook;
  if (!hook && stop_refuses_queued_work()) {
    cancel_queued_at_stop(task);
    return;
  }
  if (!hook) admission_.dequeued();
  if (!task.advance(TaskStage::queued, TaskStage::running)) {
    cancelled_before_start(task);  // settled by its canceller: it never runs
    return;
  }
  // On a borrowed io_context, what the task's coroutine leaves there (a coroutine it
  // co_spawned on its executor, which nothing here tracks) may be resumed by the owner after
  // the loop is gone, and each resumption passes through this core.
  if (!io_.owned() && task.coroutine) task.keeps_loop = Ref<RefCounted>::share(this);
  if (!hook) counters_.running_delta(+1);
  if (task.coroutine && !hook) in_flight_.link(task);
  RunScope scope(reporting_, drain_, task.label, RunScope::Kind::command);
  if (!hook) counters_.record_lag(scope.started() - task.label.submitted_at);
  TaskContextInstall context(task);
  task.run();
}

bool LoopCore::stop_refuses_queued_work() noexcept {
  if (!latches_.stop_requested()) return false;
  if (!loop_thread_.stop_seen) {
    loop_thread_.stop_seen = true;
    loop_thread_.stop_drains_queued_work = latches_.requested_stop().drain_timeout > std::chrono::nanoseconds::zero();
  }
  return loop_thread_.undoing_start || !loop_thread_.stop_drains_queued_work || phase() >= Phase::cancelling;
}

void LoopCore::cancel_queued_at_stop(TaskBase& task) noexcept {
  admission_.dequeued();
  if (!task.advance(TaskStage::queued, TaskStage::cancelled)) {
    cancelled_before_start(task);  // a cancel() got there first
    return;
  }
  task.set_cancel_cause(CancelCause::stop);
  task.drop_function();
  counters_.count(Counters::Outcome::cancelled);
  if (task.kind() == TaskKind::detached) return;  // a posted coroutine: nobody waits on it
  task.settle_exception(given_up_.errors.cancelled_before_start_by_stop());
}

void LoopCore::cancelled_before_start(TaskBase& task) noexcept {
  if (task.kind() != TaskKind::hook) counters_.count(Counters::Outcome::cancelled);
  if (!task.cancel_in_progress()) return;
  if (drain_.closed()) {
    // The stop's last step (or a failed start) closed it: the loop runs nothing more that
    // the canceller could be waiting for, so wait here, as the stop does for those kept.
    task.wait_for_canceller();
    return;
  }
  given_up_.keep_cancel_in_progress(task);
}

void LoopCore::reject(TaskBase& task) noexcept {
  if (task.kind() != TaskKind::hook) admission_.dequeued();
  if (!task.advance(TaskStage::queued, TaskStage::refused)) {
    cancelled_before_start(task);  // before the stop reached it
    return;
  }
  task.drop_function();
  if (task.kind() == TaskKind::detached) {
    refuse_posted_call();  // counts it and tells the error handler: nobody else would know
    return;                // and nobody holds a handle to settle
  }
  if (task.kind() != TaskKind::hook) counters_.rejected();
  task.settle_exception(std::make_exception_ptr(refusal()));
}

void LoopCore::reject_at_call(TaskBase& task) noexcept {
  if (!task.claim_refusal()) return;  // its stop token cancelled it already
  task.drop_function();
  if (task.kind() != TaskKind::detached) {
    task.settle_exception(std::make_exception_ptr(refusal()));
  }
}

bool LoopCore::deliver_cancel(TaskBase& task, CancelCause cause) noexcept {
  if (!task.coroutine) return false;
  TaskStage stage = task.stage();
  for (;;) {
    if (stage != TaskStage::running && stage != TaskStage::cancel_requested) return false;
    if (task.advance(stage, TaskStage::cancel_delivered)) break;
    stage = task.stage();
  }
  // A requested cancel was made by another (cancel(), a stop token), whose cause it keeps.
  const bool cancelled_here = stage == TaskStage::running;
  if (cancelled_here) task.set_cancel_cause(cause);
  task.cancel_signal.emit(boost::asio::cancellation_type::terminal);
  return cancelled_here;
}

void LoopCore::start_cancel_all(CancelAllState& group) noexcept {
  in_flight_.cancel_all(group, [this](TaskBase& task) { return deliver_cancel(task, CancelCause::cancel_all); });
}

std::vector<TaskInfo> LoopCore::in_flight_snapshot() const { return in_flight_.snapshot(std::chrono::steady_clock::now()); }

std::optional<std::exception_ptr> LoopCore::conclude(TaskBase& task, std::exception_ptr error) noexcept {
  const TaskStage stage = task.stage();
  if (is_final(stage)) return std::nullopt;  // given up at stop: its handle settled already
  const bool hook = task.kind() == TaskKind::hook;
  if (!hook) counters_.running_delta(-1);
  if (stage == TaskStage::cancel_delivered) {
    // Counted before it is reported: a handler that reads the stats sees the outcome.
    if (!hook) counters_.count(Counters::Outcome::cancelled);
    if (error && !is_cancellation(error)) report_error(error, "a task being cancelled");
    task.finish(TaskStage::cancelled);
    return given_up_.errors.cancelled_while_running(task.cancel_cause());
  }
  if (error) {
    if (!hook) counters_.count(Counters::Outcome::failed);
    if (task.kind() == TaskKind::detached) report_error(error, "posted task");
    task.finish(TaskStage::failed);
    return error;
  }
  if (!hook) counters_.count(Counters::Outcome::completed);
  task.finish(TaskStage::completed);
  return std::exception_ptr{};
}

void LoopCore::task_left(TaskBase& task) noexcept {
  if (!task.coroutine) return;
  if (task.kind() != TaskKind::hook) {
    in_flight_.unlink(task);
    in_flight_.task_left(task);
  }
  notify_progress();
}

void LoopCore::clear_slot_later(TaskBase& task, Ref<StateBase> keep) noexcept {
  try {
    loop_thread_.slots_to_clear.emplace_back(&task, std::move(keep));
  } catch (...) {
    (void)keep.detach();  // out of memory: the task stays for good, its slot untouched
  }
}

void LoopCore::clear_slots() noexcept {
  // Each entry's reference keeps its task (and its signal) alive past the clear: the
  // handler's copy of the executor, which the clear destroys, may hold the last other one.
  for (auto& [task, keep] : std::exchange(loop_thread_.slots_to_clear, {})) task->cancel_signal.slot().clear();
}

void LoopCore::escaped_task_stretch(TaskBase& task, std::exception_ptr error) noexcept {
  if (!is_final(task.stage()) && !task.escaped_error()) task.keep_escaped_error(error);
  report_error(std::move(error), "a task's coroutine (the task fails with this exception)");
}

bool LoopCore::begin_posted_call(const TaskLabel& label, std::chrono::steady_clock::time_point now) noexcept {
  admission_.dequeued();
  if (stop_refuses_queued_work()) {
    counters_.count(Counters::Outcome::cancelled);  // as a task the stop cancels before it started
    return false;
  }
  counters_.record_lag(now - label.submitted_at);
  counters_.running_delta(+1);
  return true;
}

void LoopCore::end_posted_call(std::exception_ptr error) noexcept {
  counters_.running_delta(-1);
  if (error) {
    counters_.count(Counters::Outcome::failed);
    report_error(std::move(error), "posted task");
  } else {
    counters_.count(Counters::Outcome::completed);
  }
}

void LoopCore::discard_posted_call() noexcept {
  admission_.dequeued();
  refuse_posted_call();
}

void LoopCore::refuse_posted_call() noexcept {
  counters_.rejected();
  report_error(std::make_exception_ptr(refusal()), "post()");
}

}  // namespace loopbridge::detail

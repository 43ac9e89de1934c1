// The stop of a loop: the host side (request, budget, join), the loop thread's walk down
// kStopSteps (Phase::stop_hooks -> draining -> cancelling -> settling_waits -> closed), the
// one path by which the stop gives up a task, and the thread's last teardown.

#include "loop_core.hpp"

#include "options_check.hpp"
#include "thread_roles.hpp"

#include <loopbridge/loop/detail/deadline.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace loopbridge::detail {
namespace {

using Clock = std::chrono::steady_clock;

// How long past the stop's own budget the host still waits for the loop thread.
constexpr std::chrono::seconds kJoinMargin{2};
// What the budget allows, past its deadlines, for destroying each task in flight.
constexpr std::chrono::nanoseconds kTeardownPerTask{1000};
// ShutdownReport::abandoned_tasks lists at most this many (abandoned counts them all).
constexpr std::size_t kListedAbandonedTasks = 1000;

}  // namespace

// ---------------------------------------------------------------- host side

void LoopCore::request_stop(const StopOptions& options) noexcept {
  if (forked_away()) return;  // stopped here already; its latches may be held by a parent thread
  if (!latches_.request_stop(options)) return;
  admission_.close();
  drain_.push(stop_command_);
}

std::chrono::nanoseconds LoopCore::stop_budget(const StopOptions& options) const {
  const StopOptions stop = latches_.stop_requested() ? latches_.requested_stop() : options;
  const std::size_t hooks = hooks_.stop_parts();
  std::chrono::nanoseconds budget = stop_steps_allowance(stop, hooks);
  const std::uint64_t in_flight = std::min<std::uint64_t>(admission_.queued() + counters_.running(), 1'000'000'000);
  budget = saturating_add(budget, kTeardownPerTask * static_cast<std::int64_t>(in_flight));
  if (phase() == Phase::starting) {
    // The stop waits for the start to end; a start that fails instead undoes itself with the
    // destructor's deadlines.
    budget = std::max(budget, stop_steps_allowance(options_.destructor_stop, hooks));
    budget = saturating_add(budget, saturating_add(options_.start_timeout, options_.destructor_stop.cancel_timeout));
  }
  return budget;
}

ShutdownReport LoopCore::stop(const StopOptions& options) {
  check_stop_options(options);
  if (forked_away()) {
    // Nothing to wait for: the loop's thread is in the parent process.
    own_thread_.forget_after_fork();
    return report_in_fork_child();
  }
  // There, joining would wait on itself.
  if (this_thread_must_not_join(*this)) {
    request_stop(options);
    ShutdownReport report = this->report();
    report.joined = false;
    return report;
  }
  // A loop with no thread to join (never started, or ended already) stops anywhere.
  if (this_thread_core() != nullptr && phase() != Phase::created && !own_thread_.ended()) {
    throw DeadlockError("stop() on another loop's thread would block that loop until this one ends (request_stop() does "
                        "not wait)");
  }
  // The budget is read before the request: a stop during the start also waits for the start.
  const auto budget = saturating_add(stop_budget(options), kJoinMargin);
  request_stop(options);
  const bool joined = join_thread(deadline_after(budget));
  ShutdownReport report = this->report();
  report.joined = joined;
  return report;
}

bool LoopCore::join_thread(Clock::time_point deadline) {
  bool joined = false;
  switch (own_thread_.claim_ending([this] { return phase() == Phase::created; }, joined)) {
    case OwnThread::Claim::ended: return joined;
    case OwnThread::Claim::no_thread:
      fail_without_thread();
      own_thread_.ended_without_thread();
      return true;
    case OwnThread::Claim::first: break;
  }
  const bool finished = latches_.wait_finished(deadline);
  if (!finished) {
    const bool own = own_thread_.joinable_thread();  // false: the loop runs in run_here()
    report_error(std::make_exception_ptr(Timeout(
                     own ? "the loop's thread did not end within the stop's deadlines and was detached; a callable "
                           "may be blocking it"
                         : "the loop did not end within the stop's deadlines and run_here() goes on; a callable may "
                           "be blocking its thread")),
                 "stop()");
  }
  own_thread_.end(finished);
  return finished;
}

void LoopCore::stop_for_destructor() noexcept {
  if (forked_away()) {
    own_thread_.forget_after_fork();
    return;
  }
  if (phase() != Phase::created && (this_thread_core() != nullptr || this_thread_must_not_join(*this))) {
    // Joining here would wait on a loop thread (this one, one that may wait on us, or the
    // one whose stop waits for this thread).
    request_stop(options_.destructor_stop);
    own_thread_.detach_unclaimed();
    report_error(std::make_exception_ptr(DeadlockError(
                     "a BackgroundLoop was destroyed on a thread its stop would wait for (a loop thread, a to_thread "
                     "worker, a task's call_host() function); the loop stops on its own and its thread was "
                     "detached")),
                 "~BackgroundLoop()");
    return;
  }
  try {
    const bool stops_here = !own_thread_.ending_claimed();
    ShutdownReport report = stop(options_.destructor_stop);
    // Nobody receives this report: its hook errors go to the error handler.
    if (stops_here) {
      for (const auto& error : report.hook_errors) report_error(error, "an on_stop hook run by the destructor");
    }
  } catch (...) {
    report_error(std::current_exception(), "~BackgroundLoop()");
  }
}

void LoopCore::let_go_at_exit() noexcept {
  request_stop(options_.destructor_stop);
  own_thread_.detach_unclaimed();
}

// ---------------------------------------------------------------- loop thread

void LoopCore::execute_stop() noexcept {
  if (loop_thread_.stop_executed) return;
  if (loop_thread_.start_in_progress) {
    loop_thread_.stop_after_start = true;
    return;
  }
  loop_thread_.stop_executed = true;
  loop_thread_.active_stop = latches_.requested_stop();
  if (loop_thread_.hooks_started == 0 && in_flight_.empty() && waits_.empty()) {
    finalize();  // nothing to wait for: no coroutine needed
    return;
  }
  spawn_sequence(stop_sequence(loop_thread_.hooks_started));
}

boost::asio::awaitable<void> LoopCore::stop_sequence(std::size_t hooks_started) {
  const std::size_t stop_hooks = hooks_.stop_parts();
  for (const StopStep& step : kStopSteps) {
    enter(step.phase);
    const auto deadline = deadline_after(step.allowance(loop_thread_.active_stop, stop_hooks));
    co_await run_stop_step(step.phase, hooks_started, deadline);
  }
  finalize();
}

boost::asio::awaitable<void> LoopCore::run_stop_step(Phase phase, std::size_t hooks_started,
                                                    Clock::time_point deadline) {
  const StopOptions& stop = loop_thread_.active_stop;
  auto idle = [this] { return in_flight_.empty(); };
  switch (phase) {
    case Phase::stop_hooks: {
      const auto& hooks = hooks_.entries();
      for (std::size_t i = hooks_started; i-- > 0;) {
        if (!hooks[i].on_stop) continue;
        auto error = co_await run_hook(hooks[i].on_stop, deadline_after(stop.hook_timeout), "on_stop");
        if (!error) continue;
        if (loop_thread_.undoing_start) {
          report_error(error, "an on_stop hook undoing a failed start");
        } else {
          latches_.add_hook_error(error);
        }
      }
      break;
    }
    case Phase::draining:
      if (stop.drain_timeout > std::chrono::nanoseconds::zero()) co_await wait_until(idle, deadline);
      break;
    case Phase::cancelling:
      loop_thread_.cancel_deadline = deadline;
      // Dropping needs an io_context the loop may shut down: a borrowed one keeps its pending
      // handlers (so the frames) for its owner, who would resume them. Cancel those instead.
      if (stop.drop_in_flight && io_.owned()) {
        give_up_in_flight(/*dropped=*/true);
      } else {
        co_await cancel_in_flight(deadline);
        co_await wait_until(idle, deadline);
        give_up_in_flight(/*dropped=*/false);
      }
      break;
    case Phase::settling_waits:
      // Takes back every wait still registered. Those it cannot take are being pushed to
      // this queue right now: run them as they arrive. Running them may register new waits.
      while (!waits_.empty() && Clock::now() < deadline) {
        waits_.take_back();
        run_commands();
        if (waits_.empty()) break;
        auto turn = boost::asio::post(io_.io(), boost::asio::use_awaitable);
        co_await std::move(turn);
      }
      break;
    default: break;
  }
}

boost::asio::awaitable<void> LoopCore::cancel_in_flight(Clock::time_point deadline) {
  // Each cancel queues its task's resumption in the io_context, ahead of the deadline's
  // timer: in parts, with a look at the clock between them, the deadline holds however many
  // tasks there are. Each target is held: it may end, and be freed, between two parts.
  struct Target {
    TaskBase* task;
    Ref<StateBase> keep;
  };
  std::vector<Target> targets;
  try {
    for (TaskBase* task = in_flight_.first(); task != nullptr; task = task->next_in_flight) {
      targets.push_back({task, Ref<StateBase>::share(&task->state())});
    }
  } catch (...) {
    // Out of memory: all at once, as one part.
    targets.clear();
    for (TaskBase* task = in_flight_.first(); task != nullptr;) {
      TaskBase* next = task->next_in_flight;  // a cancel may end the task at once
      deliver_cancel(*task, CancelCause::stop);
      task = next;
    }
    co_return;
  }
  std::size_t delivered = 0;
  for (const Target& target : targets) {
    deliver_cancel(*target.task, CancelCause::stop);  // one that ended meanwhile is left alone
    if (++delivered % CommandDrain::kCommandsPerDrain != 0) continue;
    auto turn = boost::asio::post(io_.io(), boost::asio::use_awaitable);
    co_await std::move(turn);
    if (Clock::now() >= deadline) break;
  }
}

void LoopCore::give_up(TaskBase& task, TaskStage final, const std::exception_ptr& error) noexcept {
  if (task.kind() != TaskKind::hook) {
    counters_.running_delta(-1);
    counters_.count(final == TaskStage::dropped ? Counters::Outcome::cancelled : Counters::Outcome::abandoned);
  }
  given_up_.keep_until_frame_gone(task);
  task.finish(final);
  task.settle_exception(error);
  task_left(task);
}

void LoopCore::give_up_in_flight(bool dropped) noexcept {
  const auto now = Clock::now();
  const std::exception_ptr& error = dropped ? given_up_.errors.dropped() : given_up_.errors.abandoned();
  std::vector<TaskInfo> listed;
  while (TaskBase* task = in_flight_.first()) {
    if (!dropped && listed.size() < kListedAbandonedTasks) {
      try {
        listed.push_back(InFlight::describe(*task, now));
      } catch (...) {
        // Out of memory: the count still tells.
      }
    }
    give_up(*task, dropped ? TaskStage::dropped : TaskStage::abandoned, error);
  }
  if (!listed.empty()) latches_.list_abandoned(std::move(listed), kListedAbandonedTasks);
}

void LoopCore::finalize() noexcept {
  drain_.close_and_discard();
  given_up_.wait_for_cancellers();
  in_flight_.settle_groups();
  admission_.close();
  enter(Phase::closed);
  work_.reset();
  stop_io_when_idle();
}

void LoopCore::end_of_thread() noexcept {
  loop_thread_.progress_timer.reset();
  drain_.wait_for_late_wakes();
  // The functions still running get what is left of the cancel deadline to return (the
  // stop's budget counts it once).
  const auto cancel_deadline =
      loop_thread_.cancel_deadline.value_or(deadline_after(loop_thread_.active_stop.cancel_timeout));
  if (workers_) {
    counters_.set_abandoned_workers(workers_->stop(cancel_deadline));
    retired_workers_ = workers_;
    workers_.reset();
  }
  const bool frames_kept = waits_.release_kept(loop_thread_.cancel_deadline.value_or(Clock::now()));
  if (io_.owned()) {
    // Destroys the frames of the tasks the stop gave up here, on the loop thread, and only
    // then their callables, whose captures those frames may still use.
    io_.shut_down_owned();
    clear_slots();
    given_up_.release(frames_kept);
  } else {
    clear_slots();
    // Their frames wait in the io_context on operations that ignored the cancel: only its
    // owner can end them now, by running it (they resume and finish on that thread) or by
    // destroying it. Each frame keeps its task, its callable and this loop alive.
    if (const std::size_t left = given_up_.leave_to_io_owner(); left > 0) {
      report_error(std::make_exception_ptr(TaskAbandoned(
                       std::to_string(left) +
                       " task(s) abandoned at the stop may still be suspended in the borrowed io_context; their "
                       "frames end when its owner next runs or destroys it")),
                   "stop()");
    }
    io_.release_claim();
  }
  set_this_thread_core(nullptr);
  enter(Phase::stopped);
  latches_.open_finished();
}

}  // namespace loopbridge::detail

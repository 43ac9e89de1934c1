// The loop thread's life: the start sequence, the stop sequence and the final teardown.

#include <loopbridge/loop/detail/loop_core.hpp>
#include <loopbridge/loop/detail/task.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <mutex>
#include <vector>
#include <thread>

namespace loopbridge::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Held in a list that is never freed, so that leak checkers take them for what they are:
// kept on purpose.
void keep_for_good(PendingWait& wait) noexcept {
  static std::mutex mutex;
  static auto* kept = new std::vector<PendingWait*>();
  wait.keep_without_loop();
  std::lock_guard lock(mutex);
  try {
    kept->push_back(&wait);
  } catch (...) {
  }
}

struct SequenceCompletion {
  LoopCore* core;
  void operator()(std::exception_ptr error) const noexcept {
    if (error) core->report_error(error, "loop lifecycle");
    core->sequence_ended();
  }
};

}  // namespace

bool LoopCore::begin_start() noexcept {
  Lifecycle expected = Lifecycle::created;
  if (!lifecycle_.compare_exchange_strong(expected, Lifecycle::starting, std::memory_order_acq_rel)) return false;
  start_pending_.store(true, std::memory_order_release);
  // Only now: a borrowed io_context stays free to run on its own until the loop starts.
  work_.emplace(io_.get_executor());
  return true;
}

void LoopCore::thread_main(LoopThread where) noexcept {
  set_this_thread_core(this);
  std::exception_ptr setup_error = where == LoopThread::own ? set_up_own_thread() : nullptr;
  if (started_.load(std::memory_order_acquire)) {
    // mark_started_before_thread(): nothing here could fail the start.
  } else if (hooks_.empty() && !setup_error) {
    mark_started();
  } else {
    start_in_progress_ = true;
    spawn_sequence(start_sequence(std::move(setup_error)));
  }
  for (;;) {
    try {
      io_.run();
      if (io_may_stop_ && live_sequences_ == 0) break;
      // Someone else stopped the io_context (its owner, when borrowed) while the loop still
      // has handles to settle: report it and go on, the loop ends only through its stop.
      report_error(std::make_exception_ptr(InvalidState("the loop's io_context was stopped from outside the loop")),
                   "io_context::stop() while the loop ran (stop the loop instead; it went on)");
      io_.restart();
    } catch (...) {
      // Only code that used the executor directly can get here: loopbridge's own handlers
      // catch everything. The loop goes on.
      report_error(std::current_exception(), "a handler run by the loop");
    }
  }
  progress_timer_.reset();
  wait_for_late_wakes();
  if (workers_) {
    // Their waiters are gone (cancelled, or kept aside below); the functions still running
    // get what is left of the cancel deadline to return (stop()'s budget counts it once).
    const auto deadline = cancel_deadline_.value_or(deadline_after(active_stop_.cancel_timeout));
    abandoned_workers_.store(workers_->stop(deadline), std::memory_order_relaxed);
    retired_workers_ = workers_;
    workers_.reset();
  }
  const bool frames_kept = release_waits_on_running_work();
  if (owned_io_) {
    // Destroys the frames of abandoned coroutines here, on the loop thread, and only then
    // the callables whose captures those frames may still use.
    owned_io_->shutdown();
    for (TaskBase* task : abandoned_) {
      if (!frames_kept) task->drop_function();
      task->state().release();
    }
    abandoned_.clear();
  } else {
    leave_borrowed_io_context();
  }
  set_this_thread_core(nullptr);
  {
    // Its workers and its frames are part of the stop's time.
    std::lock_guard lock(latch_mutex_);
    if (stop_requested_.load(std::memory_order_relaxed)) stop_duration_ = Clock::now() - stop_requested_at_;
  }
  open_latch(finished_);
}

bool LoopCore::release_waits_on_running_work() noexcept {
  // Host calls have no pool to wait for: they get the rest of the cancel deadline here.
  const auto deadline = cancel_deadline_.value_or(Clock::now());
  auto returned = [](PendingWait* wait) { return wait->awaited().ready(); };
  while (!std::all_of(waits_on_running_work_.begin(), waits_on_running_work_.end(), returned) &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  bool frames_kept = false;
  for (PendingWait* wait : waits_on_running_work_) {
    // A function still running now (a detached worker, a host call) keeps its waiter's
    // frame, and so the task's callable: never freed, rather than freed under it.
    if (returned(wait)) {
      wait->destroy_now();
    } else {
      frames_kept = true;
      keep_for_good(*wait);
    }
  }
  waits_on_running_work_.clear();
  return frames_kept;
}

void LoopCore::wait_for_late_wakes() noexcept {
  // Every batch the loop took began with a push that found the queue empty, and that push's
  // thread posts a wake-up after it. One may have been preempted between the two: its post
  // must not race io_context::shutdown() (or the owner's destruction of a borrowed
  // io_context). It is a few instructions from done.
  while (first_push_wakes_.load(std::memory_order_acquire) != batches_taken_) std::this_thread::yield();
}

void LoopCore::open_latch(std::atomic<bool>& flag) noexcept {
  {
    std::lock_guard lock(latch_mutex_);
    flag.store(true, std::memory_order_release);
  }
  latch_cv_.notify_all();
}

bool LoopCore::wait_latch(const std::atomic<bool>& flag, Clock::time_point deadline) {
  const auto spin_until = Clock::now() + std::chrono::microseconds(100);
  while (Clock::now() < spin_until) {
    if (flag.load(std::memory_order_acquire)) return true;
    std::this_thread::yield();
  }
  std::unique_lock lock(latch_mutex_);
  return latch_cv_.wait_until(lock, deadline, [&] { return flag.load(std::memory_order_acquire); });
}

void LoopCore::mark_started() noexcept {
  started_at_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(),
                       std::memory_order_relaxed);
  Lifecycle expected = Lifecycle::starting;
  lifecycle_.compare_exchange_strong(expected, Lifecycle::running, std::memory_order_acq_rel);
  start_pending_.store(false, std::memory_order_release);
  open_latch(started_);
}

boost::asio::awaitable<bool> LoopCore::wait_until(const std::function<bool()>& done, Clock::time_point deadline) {
  while (!done()) {
    if (Clock::now() >= deadline) co_return false;
    if (!progress_timer_) progress_timer_.emplace(io_);
    progress_timer_->expires_at(deadline);
    waiting_for_progress_ = true;
    boost::system::error_code ignored;
    auto wait = progress_timer_->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    co_await std::move(wait);
    waiting_for_progress_ = false;
  }
  co_return true;
}

boost::asio::awaitable<std::exception_ptr> LoopCore::run_hook(const Hook& hook, Clock::time_point deadline,
                                                             const char* which) {
  using HookTask = Task<void, Hook>;
  auto task = Ref<HookTask>::adopt(new HookTask(*this, TaskKind::hook, hook));
  start_task(*task);
  auto finished = [&] { return task->ready(); };
  if (!co_await wait_until(finished, deadline)) {
    deliver_cancel(*task, CancelCause::deadline);
    if (!co_await wait_until(finished, deadline_after(active_stop_.cancel_timeout))) {
      task->settled = true;
      task->given_up = owned_io_.has_value();
      task->add_ref();
      abandoned_.push_back(task.get());
      task->settle_exception(std::make_exception_ptr(TaskAbandoned("hook abandoned")));
    }
    co_return std::make_exception_ptr(Timeout(std::string(which) + " hook ran past its deadline"));
  }
  std::exception_ptr error;
  try {
    task->take();
  } catch (...) {
    error = std::current_exception();
  }
  co_return error;
}

boost::asio::awaitable<void> LoopCore::start_sequence(std::exception_ptr setup_error) {
  const auto deadline = deadline_after(options_.start_timeout);
  // A start hook that times out gets the destructor's cancel deadline to unwind.
  active_stop_ = options_.destructor_stop;
  std::exception_ptr error = std::move(setup_error);  // then no hook runs
  std::size_t entry = 0;
  for (; !error && entry < hooks_.size(); ++entry) {
    if (!hooks_[entry].on_start) continue;
    error = co_await run_hook(hooks_[entry].on_start, deadline, "on_start");
    if (error) break;
  }
  hooks_started_ = entry;
  start_in_progress_ = false;
  if (!error) {
    mark_started();
    if (stop_after_start_) execute_stop();
    co_return;
  }
  // Undo the hooks that succeeded, end whatever they submitted, and report the error once
  // the thread is gone (wait_started() waits for the finish latch).
  {
    std::lock_guard lock(latch_mutex_);
    start_error_ = error;
  }
  lifecycle_.store(Lifecycle::stopping, std::memory_order_release);
  {
    std::lock_guard lock(latch_mutex_);
    if (!stop_requested_.load(std::memory_order_relaxed)) stop_requested_at_ = Clock::now();
    stop_requested_.store(true, std::memory_order_release);
  }
  start_pending_.store(false, std::memory_order_release);
  stop_executed_ = true;
  stop_cancelling_ = true;  // nothing queued starts now
  for (std::size_t i = entry; i-- > 0;) {
    if (!hooks_[i].on_stop) continue;
    auto hook_error = co_await run_hook(hooks_[i].on_stop, deadline_after(active_stop_.hook_timeout), "on_stop");
    if (hook_error) report_error(hook_error, "on_stop hook after a failed start");
  }
  co_await wind_down();
}

void LoopCore::execute_stop() noexcept {
  if (stop_executed_) return;
  if (start_in_progress_) {
    stop_after_start_ = true;
    return;
  }
  stop_executed_ = true;
  {
    std::lock_guard lock(latch_mutex_);
    active_stop_ = requested_stop_;
  }
  if (hooks_started_ == 0 && in_flight_head_ == nullptr && waits_head_ == nullptr) {
    finalize();  // nothing to wait for: no coroutine needed
    return;
  }
  spawn_sequence(stop_sequence());
}

void LoopCore::spawn_sequence(boost::asio::awaitable<void> sequence) {
  ++live_sequences_;
  boost::asio::co_spawn(io_, std::move(sequence), SequenceCompletion{this});
}

void LoopCore::sequence_ended() noexcept {
  if (--live_sequences_ == 0 && io_may_stop_) io_.stop();
}

void LoopCore::stop_io_when_idle() noexcept {
  // A sequence that finishes the stop still has its last steps to take in the io_context
  // (co_spawn may post before it completes): stopping it under them would leave their frame
  // there, which only an owned io_context could destroy.
  io_may_stop_ = true;
  if (live_sequences_ == 0) io_.stop();
}

boost::asio::awaitable<void> LoopCore::stop_sequence() {
  for (std::size_t i = hooks_started_; i-- > 0;) {
    if (!hooks_[i].on_stop) continue;
    auto error = co_await run_hook(hooks_[i].on_stop, deadline_after(active_stop_.hook_timeout), "on_stop");
    if (error) {
      std::lock_guard lock(latch_mutex_);
      hook_errors_.push_back(error);
    }
  }
  co_await wind_down();
}

boost::asio::awaitable<void> LoopCore::wind_down() {
  auto idle = [this] { return in_flight_head_ == nullptr; };
  if (active_stop_.drain_timeout > std::chrono::nanoseconds::zero()) {
    co_await wait_until(idle, deadline_after(active_stop_.drain_timeout));
  }
  stop_cancelling_ = true;  // what is still queued is settled without starting
  cancel_deadline_ = deadline_after(active_stop_.cancel_timeout);
  // Dropping needs an io_context the loop may shut down: a borrowed one keeps its pending
  // handlers (so the frames) for its owner, who would resume them. Cancel those instead.
  if (active_stop_.drop_in_flight && owned_io_) {
    abandon_remaining(/*dropped=*/true);
  } else {
    co_await cancel_in_flight(*cancel_deadline_);
    co_await wait_until(idle, *cancel_deadline_);
    abandon_remaining(/*dropped=*/false);
  }
  co_await settle_pending_waits();
  finalize();
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
    for (TaskBase* task = in_flight_head_; task != nullptr; task = task->next_in_flight) {
      targets.push_back({task, Ref<StateBase>::share(&task->state())});
    }
  } catch (...) {
    // Out of memory: all at once, as one part.
    targets.clear();
    for (TaskBase* task = in_flight_head_; task != nullptr;) {
      TaskBase* next = task->next_in_flight;  // a cancel may end the task at once
      deliver_cancel(*task, CancelCause::stop);
      task = next;
    }
    co_return;
  }
  std::size_t delivered = 0;
  for (const Target& target : targets) {
    deliver_cancel(*target.task, CancelCause::stop);  // one that ended meanwhile is left alone
    if (++delivered % kCommandsPerDrain != 0) continue;
    auto turn = boost::asio::post(io_, boost::asio::use_awaitable);
    co_await std::move(turn);
    if (Clock::now() >= deadline) break;
  }
}

void LoopCore::register_wait(PendingWait& wait) noexcept {
  wait.prev_wait = nullptr;
  wait.next_wait = waits_head_;
  if (waits_head_) waits_head_->prev_wait = &wait;
  waits_head_ = &wait;
}

void LoopCore::unregister_wait(PendingWait& wait) noexcept {
  if (wait.prev_wait == nullptr && waits_head_ != &wait) return;  // taken out at stop already
  (wait.prev_wait ? wait.prev_wait->next_wait : waits_head_) = wait.next_wait;
  if (wait.next_wait) wait.next_wait->prev_wait = wait.prev_wait;
  wait.prev_wait = wait.next_wait = nullptr;
}

boost::asio::awaitable<void> LoopCore::settle_pending_waits() {
  // Takes back every wait still registered and destroys it here. Those it cannot take were
  // claimed by the thread settling them (or by a cancel) and are being pushed to this queue
  // right now: run them as they arrive. Running them may register new waits: go round.
  const auto deadline = deadline_after(std::chrono::seconds(1));
  while (waits_head_ != nullptr && Clock::now() < deadline) {
    for (PendingWait* wait = waits_head_; wait != nullptr;) {
      PendingWait* next = wait->next_wait;
      if (wait->awaited().reclaim_continuation(*wait)) {
        if (wait->frame_used_by_work()) {
          // Its function still runs (the task was abandoned or dropped): ask it to stop, and
          // keep the frame it may use until it has returned (out of memory: for good).
          wait->awaited().request_cancel(CancelCause::stop);
          try {
            waits_on_running_work_.push_back(wait);
          } catch (...) {
          }
          unregister_wait(*wait);
        } else {
          wait->destroy_now();
        }
      }
      wait = next;
    }
    drain();
    if (waits_head_ == nullptr) break;
    auto yield = boost::asio::post(io_, boost::asio::use_awaitable);
    co_await std::move(yield);
  }
}

void LoopCore::close_queue() noexcept {
  Command* rest = queue_.close();
  if (rest != nullptr) ++batches_taken_;
  // The part of a batch still waiting is older than what the queue held.
  for (Command* command : {std::exchange(unfinished_batch_, nullptr), rest}) {
    while (command != nullptr) {
      Command* next = command->next_in_queue;
      command->discard(*this);
      queue_.ran_one();
      command = next;
    }
  }
}

void LoopCore::finalize() noexcept {
  close_queue();
  // Their cancellers settle them; the queue is closed, so a canceller waiting for this loop
  // (a capture's destructor that submits) gets LoopStopped at once.
  for (TaskBase* task : cancels_in_progress_) {
    task->wait_for_canceller();
    task->state().release();
  }
  cancels_in_progress_.clear();
  for (auto& group : pending_cancel_alls_) group->set_value(group->cancelled);
  pending_cancel_alls_.clear();
  lifecycle_.store(Lifecycle::stopped, std::memory_order_release);
  wake_full_waiters();
  work_.reset();
  stop_io_when_idle();
}

}  // namespace loopbridge::detail

// The loop thread's body, and what its start and stop sequences share: running a hook,
// waiting on the loop thread for progress, the lifecycle coroutines themselves.

#include "loop_core.hpp"

#include "thread_roles.hpp"

#include <loopbridge/loop/detail/deadline.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace loopbridge::detail {
namespace {

using Clock = std::chrono::steady_clock;

struct SequenceCompletion {
  LoopCore* core;
  void operator()(std::exception_ptr error) const noexcept {
    if (error) core->report_error(error, "loop lifecycle");
    core->sequence_ended();
  }
};

}  // namespace

void LoopCore::thread_main(LoopThread where) noexcept {
  set_this_thread_core(this);
  begin_loop_thread(where);
  for (;;) {
    try {
      io_.io().run();
      if (loop_thread_.io_may_stop && loop_thread_.live_sequences == 0) break;
      // Someone else stopped the io_context (its owner, when borrowed) while the loop still
      // has handles to settle: report it and go on, the loop ends only through its stop.
      report_error(std::make_exception_ptr(InvalidState(
                       "io_context::stop() was called from outside the loop, which restarted it and went on (stop "
                       "the loop instead)")),
                   "the loop's io_context");
      io_.io().restart();
    } catch (...) {
      // Only code that used the executor directly can get here: loopbridge's own handlers
      // catch everything. The loop goes on.
      report_error(std::current_exception(), "a handler run by the loop");
    }
  }
  end_of_thread();
}

void LoopCore::spawn_sequence(boost::asio::awaitable<void> sequence) {
  ++loop_thread_.live_sequences;
  boost::asio::co_spawn(io_.io(), std::move(sequence), SequenceCompletion{this});
}

void LoopCore::sequence_ended() noexcept {
  if (--loop_thread_.live_sequences == 0 && loop_thread_.io_may_stop) io_.io().stop();
}

void LoopCore::stop_io_when_idle() noexcept {
  // A sequence that finishes the stop still has its last steps to take in the io_context
  // (co_spawn may post before it completes): stopping it under them would leave their frame
  // there, which only an owned io_context could destroy.
  loop_thread_.io_may_stop = true;
  if (loop_thread_.live_sequences == 0) io_.io().stop();
}

boost::asio::awaitable<bool> LoopCore::wait_until(const std::function<bool()>& done, Clock::time_point deadline) {
  auto& timer = loop_thread_.progress_timer;
  while (!done()) {
    if (Clock::now() >= deadline) co_return false;
    if (!timer) timer.emplace(io_.io());
    timer->expires_at(deadline);
    loop_thread_.waiting_for_progress = true;
    boost::system::error_code ignored;
    auto wait = timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    co_await std::move(wait);
    loop_thread_.waiting_for_progress = false;
  }
  co_return true;
}

void LoopCore::notify_progress() noexcept {
  if (loop_thread_.waiting_for_progress && loop_thread_.progress_timer) loop_thread_.progress_timer->cancel();
}

boost::asio::awaitable<std::exception_ptr> LoopCore::run_hook(const Hook& hook, Clock::time_point deadline,
                                                             const char* which) {
  using HookTask = Task<void, Hook>;
  auto task = Ref<HookTask>::adopt(new HookTask(*this, TaskKind::hook, hook));
  start_task(*task);
  auto finished = [&] { return task->ready(); };
  if (!co_await wait_until(finished, deadline)) {
    deliver_cancel(*task, CancelCause::deadline);
    if (!co_await wait_until(finished, deadline_after(loop_thread_.active_stop.cancel_timeout))) {
      give_up(*task, TaskStage::abandoned,
              std::make_exception_ptr(TaskAbandoned("the hook did not unwind before the cancel deadline")));
    }
    co_return std::make_exception_ptr(Timeout(std::string("an ") + which + " hook ran past its deadline and was cancelled"));
  }
  std::exception_ptr error;
  try {
    task->take();
  } catch (...) {
    error = std::current_exception();
  }
  co_return error;
}

}  // namespace loopbridge::detail

// The start of a loop: hooks registered before it, the host side of start() and run_here(),
// and the loop thread's start sequence (Phase::created -> starting -> running).

#include "loop_core.hpp"

#include "thread_roles.hpp"

#include <loopbridge/loop/detail/deadline.hpp>

#include <utility>

namespace loopbridge::detail {

void HookList::add(HookEntry& entry) {
  if (!entry.on_start && !entry.on_stop) throw InvalidArgument("an empty hook was added");
  std::lock_guard lock(mutex_);
  if (sealed_) throw InvalidState("hooks must be added before start()");
  entries_.push_back(std::move(entry));
}

void HookList::seal() noexcept {
  std::lock_guard lock(mutex_);
  sealed_ = true;
}

std::size_t HookList::stop_parts() const noexcept {
  std::size_t count = 0;
  for (const auto& entry : entries_) count += entry.on_stop ? 1 : 0;
  return count;
}

void LoopCore::add_hook(HookEntry& entry) { hooks_.add(entry); }

bool LoopCore::begin_start() noexcept {
  Phase expected = Phase::created;
  if (!phase_.compare_exchange_strong(expected, Phase::starting, std::memory_order_acq_rel)) return false;
  hooks_.seal();
  // Only now: a borrowed io_context stays free to run on its own until the loop starts.
  work_.emplace(io_.io().get_executor());
  admission_.open();
  return true;
}

const char* LoopCore::refused_start() const noexcept {
  return phase() >= Phase::stop_hooks || phase() == Phase::created ? "a stopped loop cannot be restarted"
                                                                   : "the loop has started already (start() or run_here())";
}

bool LoopCore::start_needs_no_wait() const noexcept {
  // Nothing on the new thread can fail the start: no hooks, no pinning, no on_thread_start.
  return hooks_.entries().empty() && options_.cpu_affinity.empty() && !options_.on_thread_start;
}

void LoopCore::start() {
  bool waits = true;
  bool started = false;
  try {
    started = own_thread_.start_thread([this] { return begin_start(); },
                                       [this, &waits] {
                                         io_.claim(this);
                                         // Then start() returns without waiting for the
                                         // thread to be scheduled: work submitted meanwhile
                                         // waits in the queue.
                                         waits = !start_needs_no_wait();
                                         if (!waits) mark_started();
                                         return create_own_thread();
                                       });
  } catch (...) {
    fail_without_thread();  // settles what was submitted meanwhile (user code): unlocked
    own_thread_.ended_without_thread();
    throw;
  }
  if (!started) throw InvalidState(refused_start());
  if (!waits) return;
  // Held while waiting: the thread may end (and let go of the loop) before this returns.
  const Ref<LoopCore> keep = Ref<LoopCore>::share(this);
  if (std::exception_ptr error = latches_.wait_start_outcome()) {
    join_thread(std::chrono::steady_clock::time_point::max());  // a failed start has ended its thread
    std::rethrow_exception(error);
  }
}

ShutdownReport LoopCore::run_here() {
  if (this_thread_core() != nullptr) {
    throw DeadlockError("run_here() would block a loop thread until this loop stops");
  }
  check_runs_on_caller();
  bool started = false;
  try {
    started = own_thread_.start_thread([this] { return begin_start(); },
                                       [this] {
                                         io_.claim(this);
                                         return SystemThread();  // the calling thread is the loop's
                                       });
  } catch (...) {
    fail_without_thread();
    own_thread_.ended_without_thread();
    throw;
  }
  if (!started) throw InvalidState(refused_start());
  // Only `keep` from here on: once the loop has ended, a stop() on another thread returns
  // and may let go of everything else.
  const Ref<LoopCore> keep = Ref<LoopCore>::share(this);
  keep->thread_main(LoopThread::caller);
  if (std::exception_ptr error = keep->latches_.wait_start_outcome()) std::rethrow_exception(error);
  ShutdownReport report = keep->report();
  report.joined = true;
  return report;
}

void LoopCore::fail_without_thread() noexcept {
  admission_.close();
  enter(Phase::closed);
  // Submissions accepted since start() began settle here: no loop thread will run them.
  drain_.close_and_discard();
  work_.reset();
  io_.release_claim();
  enter(Phase::stopped);
  latches_.open_finished();  // wait_stopped(): stopped, with no thread to finish
}

void LoopCore::mark_started() noexcept {
  counters_.mark_started(std::chrono::steady_clock::now());
  Phase expected = Phase::starting;
  phase_.compare_exchange_strong(expected, Phase::running, std::memory_order_acq_rel);
  latches_.open_started();
}

void LoopCore::begin_loop_thread(LoopThread where) noexcept {
  std::exception_ptr setup_error = where == LoopThread::own ? set_up_own_thread() : nullptr;
  if (latches_.started()) return;  // start() marked it: nothing here could fail the start
  if (hooks_.entries().empty() && !setup_error) {
    mark_started();
    return;
  }
  loop_thread_.start_in_progress = true;
  spawn_sequence(start_sequence(std::move(setup_error)));
}

boost::asio::awaitable<void> LoopCore::start_sequence(std::exception_ptr setup_error) {
  const auto deadline = deadline_after(options_.start_timeout);
  // A start hook that times out gets the destructor's cancel deadline to unwind.
  loop_thread_.active_stop = options_.destructor_stop;
  std::exception_ptr error = std::move(setup_error);  // then no hook runs
  const auto& hooks = hooks_.entries();
  std::size_t entry = 0;
  for (; !error && entry < hooks.size(); ++entry) {
    if (!hooks[entry].on_start) continue;
    error = co_await run_hook(hooks[entry].on_start, deadline, "on_start");
    if (error) break;
  }
  loop_thread_.hooks_started = entry;
  loop_thread_.start_in_progress = false;
  if (!error) {
    mark_started();
    if (loop_thread_.stop_after_start) execute_stop();
    co_return;
  }
  // Undo the hooks that succeeded and end whatever they submitted, as a stop does; the error
  // is given out once the thread is gone (wait_start_outcome() waits for the finish latch).
  latches_.set_start_error(error);
  latches_.request_stop(options_.destructor_stop);
  admission_.close();
  loop_thread_.undoing_start = true;
  loop_thread_.stop_executed = true;
  co_await stop_sequence(entry);
}

}  // namespace loopbridge::detail

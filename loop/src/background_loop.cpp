#include <loopbridge/loop/background_loop.hpp>

#include <boost/chrono.hpp>

#include <cstdio>
#include <sstream>
#include <utility>
#include <vector>

namespace loopbridge {
namespace {

void check_stop_options(const StopOptions& o) {
  auto negative = [](std::chrono::nanoseconds d) { return d < std::chrono::nanoseconds::zero(); };
  if (negative(o.drain_timeout) || negative(o.cancel_timeout) || negative(o.hook_timeout)) {
    throw InvalidArgument("stop deadlines must not be negative");
  }
}

// How long after the stop's own deadlines the host still waits for the loop thread.
constexpr std::chrono::seconds kJoinMargin{2};

const char* refused_start(const detail::LoopCore& loop) {
  const auto state = loop.lifecycle();
  return state == detail::Lifecycle::stopped || state == detail::Lifecycle::created
             ? "a stopped loop cannot be restarted"
             : "the loop was started already (start() or run_here())";
}

}  // namespace

std::string ShutdownReport::summary() const {
  std::ostringstream out;
  out << "submitted " << submitted << ", completed " << completed << ", failed " << failed << ", cancelled "
      << cancelled << ", abandoned " << abandoned << ", rejected " << rejected << ", hook errors "
      << hook_errors.size() << ", "
      << std::chrono::duration_cast<std::chrono::microseconds>(duration).count() << " us"
      << (joined ? "" : ", thread not joined");
  return out.str();
}

void LoopHandle::request_stop(StopOptions options) const {
  check_stop_options(options);
  core().request_stop(options);
}

bool LoopHandle::wait_stopped_until(std::chrono::steady_clock::time_point deadline) const {
  detail::LoopCore& loop = core();
  loop.check_not_forked_away();
  if (detail::this_thread_core() != nullptr) throw DeadlockError("wait_stopped() on a loop thread");
  return loop.wait_finished(deadline);
}

std::vector<LoopHandle> live_loops() {
  std::vector<LoopHandle> loops;
  for (auto& core : detail::LoopCore::live()) loops.push_back(LoopHandle(std::move(core)));
  return loops;
}

BackgroundLoop* current_loop() noexcept {
  detail::LoopCore* core = detail::this_thread_core();
  return core ? core->owner() : nullptr;
}

BackgroundLoop::BackgroundLoop(LoopOptions options)
    : LoopHandle(detail::Ref<detail::LoopCore>::adopt(new detail::LoopCore(std::move(options)))) {
  core().set_owner(this);
}

BackgroundLoop::BackgroundLoop(boost::asio::io_context& io, LoopOptions options)
    : LoopHandle(detail::Ref<detail::LoopCore>::adopt(new detail::LoopCore(std::move(options), &io))) {
  core().set_owner(this);
}

BackgroundLoop::~BackgroundLoop() {
  detail::LoopCore& loop = core();
  if (loop.forked_away()) {
    forget_thread_after_fork();
    loop.set_owner(nullptr);
    return;
  }
  if (loop.lifecycle() != detail::Lifecycle::created &&
      (detail::this_thread_core() != nullptr || detail::this_thread_work_owner() == &loop)) {
    // Joining here would wait on a loop thread (this one, one that may wait on us, or the
    // one whose stop waits for this thread).
    loop.set_owner(nullptr);
    loop.request_stop(StopOptions{});
    {
      std::lock_guard lock(lifecycle_mutex_);
      if (!std::exchange(ending_claimed_, true) && thread_.joinable()) thread_.detach();
    }
    loop.report_error(std::make_exception_ptr(DeadlockError(
                          "BackgroundLoop destroyed on a thread its stop would wait for (a loop thread, one of "
                          "its to_thread workers, a call_host() function of one of its tasks)")),
                      "BackgroundLoop destructor (the loop stops on its own; its thread was detached)");
    return;
  }
  try {
    bool stops_here = false;
    {
      std::lock_guard lock(lifecycle_mutex_);
      stops_here = !joined_ && !ending_claimed_;
    }
    ShutdownReport report = stop(loop.destructor_stop());
    // Nobody receives this report: its hook errors go to the error handler.
    if (stops_here) {
      for (const auto& error : report.hook_errors) loop.report_error(error, "on_stop hook, stopped by the destructor");
    }
  } catch (...) {
    loop.report_error(std::current_exception(), "BackgroundLoop destructor");
  }
  loop.set_owner(nullptr);
}

void BackgroundLoop::on_start(Hook hook) { add_hooks(std::move(hook), nullptr); }
void BackgroundLoop::on_stop(Hook hook) { add_hooks(nullptr, std::move(hook)); }
void BackgroundLoop::on_start_stop(Hook start, Hook stop) {
  if (!start || !stop) throw InvalidArgument("on_start_stop needs both hooks");
  add_hooks(std::move(start), std::move(stop));
}

void BackgroundLoop::add_hooks(Hook start, Hook stop) {
  detail::HookEntry entry{std::move(start), std::move(stop)};  // if refused, destroyed after the unlock
  std::lock_guard lock(lifecycle_mutex_);
  core().add_hook(entry);
}

void BackgroundLoop::start() {
  detail::LoopCore& loop = core();
  bool started = false;
  std::exception_ptr failed;
  {
    std::lock_guard lock(lifecycle_mutex_);
    if (ending_claimed_ || !loop.begin_start()) throw InvalidState(refused_start(loop));
    try {
      loop.claim_io_context();
      started = loop.mark_started_before_thread();
      thread_ = loop.create_own_thread();
    } catch (...) {
      failed = std::current_exception();
      ending_claimed_ = true;
    }
  }
  if (failed) {
    end_without_thread();
    std::rethrow_exception(failed);
  }
  if (started) return;
  // Held while waiting: the thread may end (and let go of the loop) before this call returns.
  const detail::Ref<detail::LoopCore> keep = detail::Ref<detail::LoopCore>::share(&loop);
  try {
    keep->wait_started();
  } catch (...) {
    // The thread has ended (a failed start ends it before the error is given out).
    end_thread(std::chrono::steady_clock::time_point::max());
    throw;
  }
}

ShutdownReport BackgroundLoop::run_here() {
  detail::LoopCore& loop = core();
  if (detail::this_thread_core() != nullptr) {
    throw DeadlockError("run_here() blocks its thread until the loop stops, which a loop thread must not do");
  }
  loop.check_runs_on_caller();
  std::exception_ptr failed;
  {
    std::lock_guard lock(lifecycle_mutex_);
    if (ending_claimed_ || !loop.begin_start()) throw InvalidState(refused_start(loop));
    try {
      loop.claim_io_context();
    } catch (...) {
      failed = std::current_exception();
      ending_claimed_ = true;
    }
  }
  if (failed) {
    end_without_thread();
    std::rethrow_exception(failed);
  }
  // Only `keep` from here on: once the loop has ended, a stop() on another thread returns
  // and may destroy this object.
  detail::Ref<detail::LoopCore> keep = detail::Ref<detail::LoopCore>::share(&loop);
  keep->thread_main(detail::LoopThread::caller);
  keep->wait_started();  // the loop has ended: rethrows the error of a failed start
  ShutdownReport report = keep->report();
  report.joined = true;
  return report;
}

ShutdownReport BackgroundLoop::stop(StopOptions options) {
  check_stop_options(options);
  detail::LoopCore& loop = core();
  if (loop.forked_away()) {
    // Nothing to wait for: the loop's thread is in the parent process.
    forget_thread_after_fork();
    return loop.report_in_fork_child();
  }
  // There, or on a thread whose work the stop waits for, joining would wait on itself.
  if (on_loop_thread() || detail::this_thread_work_owner() == &loop) {
    loop.request_stop(options);
    ShutdownReport report = loop.report();
    report.joined = false;
    return report;
  }
  // A loop with no thread to join (never started, or ended already) stops anywhere.
  bool never_started = false;
  {
    std::lock_guard lock(lifecycle_mutex_);
    if (joined_) return final_report(*joined_);
    never_started = !ending_claimed_ && loop.lifecycle() == detail::Lifecycle::created;
    if (never_started) ending_claimed_ = true;
  }
  if (never_started) {
    end_without_thread();
    return final_report(true);
  }
  if (detail::this_thread_core() != nullptr) {
    throw DeadlockError("stop() must join the loop thread, which a loop thread must not wait for");
  }
  // The budget is read before the request: a stop during the start also waits for the start.
  const auto budget = detail::saturating_add(loop.stop_budget(options), kJoinMargin);
  loop.request_stop(options);
  return final_report(end_thread(detail::deadline_after(budget)));
}

bool BackgroundLoop::end_thread(std::chrono::steady_clock::time_point deadline) {
  detail::LoopCore& loop = core();
  {
    std::unique_lock lock(lifecycle_mutex_);
    if (joined_) return *joined_;
    if (ending_claimed_) {
      // Another thread joins; it waits no longer than its own deadline.
      ended_.wait(lock, [&] { return joined_.has_value(); });
      return *joined_;
    }
    ending_claimed_ = true;
  }
  // From here on only this thread touches thread_.
  const bool finished = loop.wait_finished(deadline);
  const bool own_thread = thread_.joinable();  // false: the loop runs in run_here()
  if (finished) {
    if (own_thread) thread_.join();
  } else {
    if (own_thread) thread_.detach();
    loop.report_error(std::make_exception_ptr(Timeout("the loop thread did not end within the stop's deadlines")),
                      own_thread ? "stop (the thread was detached; a callable may be blocking it)"
                                 : "stop (run_here() goes on; a callable may be blocking it)");
  }
  {
    // Notified under the lock: a waiter may destroy this object as soon as it sees joined_.
    std::lock_guard lock(lifecycle_mutex_);
    joined_ = finished;
    ended_.notify_all();
  }
  return finished;
}

void BackgroundLoop::forget_thread_after_fork() noexcept {
  // The thread object names a thread of the parent: neither joined nor detached here (nor
  // destroyed joinable, which would terminate). No lock: a parent thread may have held it.
  if (!thread_.joinable()) return;
  // Kept for good, on purpose, where leak checkers see it held.
  static auto* kept = new std::vector<boost::thread>();
  try {
    kept->push_back(std::move(thread_));
  } catch (...) {
    (void)new boost::thread(std::move(thread_));  // out of memory: unreachable, but never destroyed joinable
  }
}

void BackgroundLoop::let_go_at_exit() noexcept {
  detail::LoopCore& loop = core();
  loop.request_stop(loop.destructor_stop());
  std::lock_guard lock(lifecycle_mutex_);
  if (!std::exchange(ending_claimed_, true) && thread_.joinable()) thread_.detach();
}

void BackgroundLoop::end_without_thread() {
  // Settles what was submitted meanwhile (user code may run): outside the lock.
  core().mark_start_failed_before_thread();
  std::lock_guard lock(lifecycle_mutex_);
  joined_ = true;
  ended_.notify_all();
}

ShutdownReport BackgroundLoop::final_report(bool joined) const {
  ShutdownReport report = core().report();
  report.joined = joined;
  return report;
}

}  // namespace loopbridge

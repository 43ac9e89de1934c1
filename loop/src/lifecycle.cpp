#include "lifecycle.hpp"

#include <loopbridge/loop/detail/deadline.hpp>

#include <thread>

namespace loopbridge::detail {

using Clock = std::chrono::steady_clock;

namespace {

// The loop thread usually gets there within microseconds, and a sleeping wake costs tens:
// look for up to 100 us first. Yielding between looks, not pausing, so that a loop thread
// that shares this thread's CPU runs meanwhile instead of waiting out the whole spin.
template <class Done>
bool briefly_yield_until(Done done) {
  const Clock::time_point until = Clock::now() + std::chrono::microseconds(100);
  while (!done()) {
    if (Clock::now() >= until) return done();
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

const StopStep kStopSteps[4] = {
    {Phase::stop_hooks,
     [](const StopOptions& o, std::size_t stop_hooks) noexcept {
       // Each hook gets hook_timeout, then cancel_timeout to unwind if it ran past it.
       std::chrono::nanoseconds total{0};
       for (std::size_t i = 0; i < stop_hooks; ++i) total = saturating_add(total, saturating_add(o.hook_timeout, o.cancel_timeout));
       return total;
     }},
    {Phase::draining, [](const StopOptions& o, std::size_t) noexcept { return o.drain_timeout; }},
    {Phase::cancelling, [](const StopOptions& o, std::size_t) noexcept { return o.cancel_timeout; }},
    {Phase::settling_waits,
     [](const StopOptions&, std::size_t) noexcept { return std::chrono::nanoseconds(kSettleWaitsLimit); }},
};

std::chrono::nanoseconds stop_steps_allowance(const StopOptions& options, std::size_t stop_hooks) noexcept {
  std::chrono::nanoseconds total{0};
  for (const StopStep& step : kStopSteps) total = saturating_add(total, step.allowance(options, stop_hooks));
  return total;
}

void Latches::open(std::atomic<bool>& flag) noexcept {
  {
    std::lock_guard lock(mutex_);
    flag.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

bool Latches::wait(const std::atomic<bool>& flag, Clock::time_point deadline) {
  if (briefly_yield_until([&] { return flag.load(std::memory_order_acquire); })) return true;
  std::unique_lock lock(mutex_);
  return cv_.wait_until(lock, deadline, [&] { return flag.load(std::memory_order_acquire); });
}

void Latches::set_start_error(std::exception_ptr error) noexcept {
  std::lock_guard lock(mutex_);
  start_error_ = std::move(error);
}

std::exception_ptr Latches::wait_start_outcome() {
  auto ended = [this] { return started() || finished(); };
  if (!briefly_yield_until(ended)) {
    // No deadline of its own: the loop thread bounds the start with start_timeout.
    std::unique_lock lock(mutex_);
    cv_.wait(lock, ended);
  }
  std::lock_guard lock(mutex_);
  return start_error_;
}

bool Latches::request_stop(const StopOptions& options) noexcept {
  // The options are in place before anyone sees the request (the budget, the loop).
  std::lock_guard lock(mutex_);
  if (stop_requested_.load(std::memory_order_relaxed)) return false;
  requested_stop_ = options;
  stop_requested_at_ = Clock::now();
  stop_requested_.store(true, std::memory_order_release);
  return true;
}

StopOptions Latches::requested_stop() const {
  std::lock_guard lock(mutex_);
  return requested_stop_;
}

void Latches::add_hook_error(std::exception_ptr error) noexcept {
  std::lock_guard lock(mutex_);
  try {
    hook_errors_.push_back(std::move(error));
  } catch (...) {
    // Out of memory: the hook's error is lost, not the stop.
  }
}

void Latches::list_abandoned(std::vector<TaskInfo> tasks, std::size_t limit) noexcept {
  std::lock_guard lock(mutex_);
  for (auto& info : tasks) {
    if (abandoned_tasks_.size() >= limit) break;
    try {
      abandoned_tasks_.push_back(std::move(info));
    } catch (...) {
      break;  // out of memory: ShutdownReport::abandoned still counts them all
    }
  }
}

void Latches::open_finished() noexcept {
  {
    std::lock_guard lock(mutex_);
    if (stop_requested_.load(std::memory_order_relaxed)) stop_duration_ = Clock::now() - stop_requested_at_;
    finished_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

bool Latches::wait_finished(Clock::time_point deadline) { return wait(finished_, deadline); }

void Latches::fill(ShutdownReport& report) const {
  std::lock_guard lock(mutex_);
  report.hook_errors = hook_errors_;
  report.abandoned_tasks = abandoned_tasks_;
  report.duration = stop_duration_;
}

}  // namespace loopbridge::detail

#include "options_check.hpp"

#include <loopbridge/loop/errors.hpp>

#include <string>

namespace loopbridge::detail {

void check_thread_options(const LoopOptions& options);  // thread_options.cpp

namespace {

bool negative(std::chrono::nanoseconds d) { return d < std::chrono::nanoseconds::zero(); }

}  // namespace

void check_stop_options(const StopOptions& options) {
  if (negative(options.drain_timeout) || negative(options.cancel_timeout) || negative(options.hook_timeout)) {
    throw InvalidArgument("stop deadlines must not be negative");
  }
}

LoopOptions checked(LoopOptions options) {
  if (options.name.empty()) throw InvalidArgument("LoopOptions::name must not be empty");
  if (options.name.find('\0') != std::string::npos) throw InvalidArgument("LoopOptions::name must not contain NUL");
  if (options.worker_threads == 0) throw InvalidArgument("worker_threads must be at least 1");
  if (options.start_timeout <= std::chrono::nanoseconds::zero()) throw InvalidArgument("start_timeout must be positive");
  check_stop_options(options.destructor_stop);
  if (negative(options.full_wait) || negative(options.stall_threshold)) {
    throw InvalidArgument("full_wait and stall_threshold must not be negative");
  }
  if (negative(options.spin_before_sleep) || options.spin_before_sleep > kMaxSpinBeforeSleep) {
    throw InvalidArgument("spin_before_sleep must be 0 to 10 ms: the loop thread spins that long between batches, and "
                          "its timers wait meanwhile");
  }
  check_thread_options(options);
  return options;
}

}  // namespace loopbridge::detail

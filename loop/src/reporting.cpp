#include "reporting.hpp"

#include "drain.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace loopbridge::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Time spent in RunScopes nested inside the current one, to charge each stretch once.
thread_local std::chrono::nanoseconds t_nested{0};

// The process-wide error handler. Never destroyed: loops report errors during exit too (a
// static loop's stop, the default loop's exit hook, a detached thread).
struct ProcessErrorHandler {
  std::mutex mutex;
  std::shared_ptr<const ErrorHandler> handler;
};

ProcessErrorHandler& process_error_handler_slot() {
  static ProcessErrorHandler* slot = new ProcessErrorHandler;
  return *slot;
}

std::shared_ptr<const ErrorHandler> process_error_handler() {
  ProcessErrorHandler& slot = process_error_handler_slot();
  std::lock_guard lock(slot.mutex);
  return slot.handler;
}

std::string describe_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(std::move(error));
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
  }
}

}  // namespace

std::string unhandled_error_line(std::string_view loop, std::string_view context, std::string_view what) {
  return "loopbridge[" + std::string(loop) + "]: unhandled error in " + std::string(context) + ": " +
         std::string(what) + "\n";
}

std::string stall_line(const StallReport& report) {
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.1f", std::chrono::duration<double, std::milli>(report.duration).count());
  return "loopbridge[" + report.loop + "]: warning: task '" + report.task + "' (" + report.where.file_name() + ":" +
         std::to_string(report.where.line()) + ") blocked the loop thread for " + duration + " ms\n";
}

void Reporting::error(std::exception_ptr error, std::string_view context, bool on_loop_thread) noexcept {
  counters_.error_reported();
  if (on_loop_thread) drain_.batch_clock_moved();
  try {
    if (options_.error_handler) {
      options_.error_handler(error, context);
      return;
    }
    if (auto handler = process_error_handler()) {
      (*handler)(error, context);
      return;
    }
    std::fputs(unhandled_error_line(options_.name, context, describe_error(error)).c_str(), stderr);
  } catch (...) {
    return;  // a handler must not throw; what it throws is dropped
  }
}

void Reporting::stretch_ran(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept {
  counters_.record_stretch(duration);
  if (options_.stall_threshold > std::chrono::nanoseconds::zero() && duration >= options_.stall_threshold) {
    stall(label, duration);
  }
}

void Reporting::stall(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept {
  counters_.stalled();
  drain_.batch_clock_moved();
  try {
    StallReport report{options_.name, label.name.empty() ? "(unnamed)" : std::string(label.name.view()), label.where, duration};
    if (options_.stall_handler) {
      options_.stall_handler(report);
      return;
    }
    std::fputs(stall_line(report).c_str(), stderr);
  } catch (...) {
    error(std::current_exception(), "stall handler", true);
  }
}

RunScope::RunScope(Reporting& reporting, CommandDrain& drain, const TaskLabel& label, Kind kind) noexcept
    : reporting_(reporting),
      drain_(drain),
      label_(label),
      kind_(kind),
      start_(kind == Kind::command ? drain.command_start() : Clock::now()),
      outer_nested_(t_nested) {
  t_nested = std::chrono::nanoseconds::zero();
}

RunScope::~RunScope() {
  const auto end = Clock::now();
  const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_);
  const auto own = total - t_nested;
  t_nested = outer_nested_ + total;
  if (kind_ == Kind::command) drain_.command_scope_ended(end);
  reporting_.stretch_ran(label_, own);  // after: a stall handler moves the clock on
}

}  // namespace loopbridge::detail

namespace loopbridge {

ErrorHandler set_error_handler(ErrorHandler handler) {
  auto replacement = handler ? std::make_shared<const ErrorHandler>(std::move(handler)) : nullptr;
  std::shared_ptr<const ErrorHandler> previous;  // copied and destroyed after the unlock
  {
    detail::ProcessErrorHandler& slot = detail::process_error_handler_slot();
    std::lock_guard lock(slot.mutex);
    previous = std::exchange(slot.handler, std::move(replacement));
  }
  return previous ? *previous : ErrorHandler{};
}

}  // namespace loopbridge

#pragma once

#include "counters.hpp"

#include <loopbridge/loop/detail/task.hpp>
#include <loopbridge/loop/options.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <string_view>

namespace loopbridge::detail {

class CommandDrain;

/// The line the default error handler prints to stderr for `loop`.
std::string unhandled_error_line(std::string_view loop, std::string_view context, std::string_view what);
/// The line printed to stderr for a stall when the loop has no stall handler.
std::string stall_line(const StallReport& report);

/// Where a loop's errors without a future and its stall reports go: the loop's handlers, the
/// process-wide error handler, or a line on stderr. Everything sent is counted.
class Reporting {
public:
  Reporting(const LoopOptions& options, Counters& counters, CommandDrain& drain) noexcept
      : options_(options), counters_(counters), drain_(drain) {}

  /// Sends an error to the error handler (any thread); what the handler throws is dropped.
  /// `on_loop_thread`: user code ran in the middle of a batch (the next command reads the
  /// clock).
  void error(std::exception_ptr error, std::string_view context, bool on_loop_thread) noexcept;
  /// Loop thread: one stretch of work ran for `duration`; a stall past the threshold goes to
  /// the stall handler.
  void stretch_ran(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept;

private:
  void stall(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept;

  const LoopOptions& options_;
  Counters& counters_;
  CommandDrain& drain_;
};

/// Times one stretch of loopbridge work on the loop thread (a callable, a task's start, one
/// resumption of a task's coroutine): feeds the longest-handler figure and stall detection.
/// Nested stretches (a resumption run inline inside another) are charged to the innermost.
class RunScope {
public:
  /// `command`: the scope is the whole of a queued command's work (a posted call, a task's
  /// start), so within a drained batch it may start where the previous such scope ended
  /// (CommandDrain::command_start()) instead of reading the clock.
  enum class Kind { stretch, command };

  RunScope(Reporting& reporting, CommandDrain& drain, const TaskLabel& label, Kind kind = Kind::stretch) noexcept;
  ~RunScope();
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

  std::chrono::steady_clock::time_point started() const noexcept { return start_; }

private:
  Reporting& reporting_;
  CommandDrain& drain_;
  const TaskLabel& label_;
  Kind kind_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::nanoseconds outer_nested_;
};

}  // namespace loopbridge::detail

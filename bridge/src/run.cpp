#include <loopbridge/bridge/run.hpp>

#include "loop_core.hpp"

#include <algorithm>
#include <string>

namespace loopbridge::detail {

bool cancel_at_deadline(StateBase& state) noexcept { return state.request_cancel(CancelCause::deadline); }

void wait_unwound(const LoopHandle& loop, const StateBase& state, const RunOptions& options, const std::string& name,
                  const source_location& where) {
  const auto cancelled_at = std::chrono::steady_clock::now();
  const auto give_up = deadline_after(options.unwind_timeout);
  const auto warn_at = std::min(deadline_after(options.unwind_warning), give_up);
  if (state.wait_until(warn_at, std::chrono::nanoseconds::zero())) return;
  if (warn_at < give_up) {
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - cancelled_at);
    LoopCore::of(LoopAccess::engine(loop)).report_error(
        std::make_exception_ptr(Timeout("run(): task '" + (name.empty() ? std::string("(unnamed)") : name) + "' (" +
                                        where.file_name() + ":" + std::to_string(where.line()) + ") has not ended " +
                                        std::to_string(waited.count()) +
                                        " ms after its deadline cancelled it; the call goes on waiting for it")),
        "run()");
    if (state.wait_until(give_up, std::chrono::nanoseconds::zero())) return;
  }
  throw Timeout(
      "run(): the deadline passed; the task was cancelled but has not ended within RunOptions::unwind_timeout (it "
      "may still be running)");
}

void wait_released_by_stop(const LoopHandle& loop, const StateBase& state, const RunOptions& options) {
  if (!state.left_running_by_stop()) return;
  if (!LoopCore::of(LoopAccess::engine(loop)).wait_released(deadline_after(options.unwind_timeout))) {
    throw Timeout(
        "run(): the loop stopped during the call and gave the task up; what is left of it has not ended within "
        "RunOptions::unwind_timeout (it may still be running)");
  }
}

}  // namespace loopbridge::detail

#pragma once

#include <cstdint>

namespace loopbridge::detail {

/// Where a task is in its life: one state machine, one atomic value.
/**
 * Who moves it, and from where to where:
 * - `queued` to `running` (the loop starts it), to `cancelling_unstarted` (a cancel on any
 *   thread, which destroys the callable and then moves it to `cancelled`), to `refused` (at
 *   the call, or when the loop closes its queue) or to `cancelled` (the stop, before it
 *   started).
 * - `running` to `completed` or `failed` (it ended), to `cancel_requested` (a cancel on
 *   any thread, for a coroutine: the request travels through the queue), to
 *   `cancel_delivered` (the loop emits its cancellation signal: the cancel's command, the
 *   stop, cancel_all, a hook's deadline), to `abandoned` or `dropped` (the stop gives it up).
 * - `cancel_requested` to `cancel_delivered`, or to any end as `running` does.
 * - `cancel_delivered` to `cancelled` (it ended: its value, if any, is dropped), `abandoned`
 *   or `dropped`.
 * The stages from `completed` on are final: the task has settled, or is settling on the
 * thread that moved it there.
 */
enum class TaskStage : std::uint8_t {
  queued,
  cancelling_unstarted,
  running,
  cancel_requested,
  cancel_delivered,
  completed,
  failed,
  cancelled,
  refused,
  abandoned,
  dropped,
};

constexpr bool is_final(TaskStage stage) noexcept { return stage >= TaskStage::completed; }
/// Started and not ended: the loop tracks it in flight.
constexpr bool is_running(TaskStage stage) noexcept {
  return stage == TaskStage::running || stage == TaskStage::cancel_requested || stage == TaskStage::cancel_delivered;
}
/// Settled by the stop while it still ran: what is left of it ends with the loop.
constexpr bool is_given_up(TaskStage stage) noexcept {
  return stage == TaskStage::abandoned || stage == TaskStage::dropped;
}

}  // namespace loopbridge::detail

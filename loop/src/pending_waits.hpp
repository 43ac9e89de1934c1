#pragma once

#include <loopbridge/loop/detail/await.hpp>

#include <chrono>
#include <vector>

namespace loopbridge::detail {

/// The coroutines on a loop waiting for work elsewhere without blocking (async_wait: a task
/// of another loop, a to_thread function, a call_host function). The loop takes back those
/// still waiting at its stop, so that none outlives its io_context. Loop thread only.
class PendingWaits {
public:
  bool empty() const noexcept { return head_ == nullptr; }
  void add(PendingWait& wait) noexcept;
  void remove(PendingWait& wait) noexcept;

  /// At the stop: takes back every wait still registered and destroys it here, or, when the
  /// work it waits on (a to_thread or call_host function) may use its frame, asks that work
  /// to stop and keeps the wait until it has returned. Those it cannot take back are being
  /// pushed to the loop's queue right now, by the thread settling them.
  void take_back() noexcept;
  /// At the loop's end: waits (until `deadline`) for the functions of the waits kept by
  /// take_back(), then destroys those that returned; the others, still running, keep their
  /// frames for good. True if any does.
  bool release_kept(std::chrono::steady_clock::time_point deadline) noexcept;

private:
  PendingWait* head_ = nullptr;
  std::vector<PendingWait*> on_running_work_;
};

}  // namespace loopbridge::detail

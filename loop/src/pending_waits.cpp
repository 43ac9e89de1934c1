#include "pending_waits.hpp"

#include <algorithm>
#include <mutex>
#include <thread>

namespace loopbridge::detail {
namespace {

// Held in a list that is never freed, so that leak checkers take them for what they are:
// kept on purpose.
void keep_for_good(PendingWait& wait) noexcept {
  static std::mutex mutex;
  static auto* kept = new std::vector<PendingWait*>();
  wait.keep_without_loop();
  std::lock_guard lock(mutex);
  try {
    kept->push_back(&wait);
  } catch (...) {
  }
}

}  // namespace

void PendingWaits::add(PendingWait& wait) noexcept {
  wait.prev_wait = nullptr;
  wait.next_wait = head_;
  if (head_) head_->prev_wait = &wait;
  head_ = &wait;
}

void PendingWaits::remove(PendingWait& wait) noexcept {
  if (wait.prev_wait == nullptr && head_ != &wait) return;  // taken out at stop already
  (wait.prev_wait ? wait.prev_wait->next_wait : head_) = wait.next_wait;
  if (wait.next_wait) wait.next_wait->prev_wait = wait.prev_wait;
  wait.prev_wait = wait.next_wait = nullptr;
}

void PendingWaits::take_back() noexcept {
  for (PendingWait* wait = head_; wait != nullptr;) {
    PendingWait* next = wait->next_wait;
    if (wait->awaited().reclaim_continuation(*wait)) {
      if (wait->frame_used_by_work()) {
        // Its function still runs (the task was abandoned or dropped): ask it to stop, and
        // keep the frame it may use until it has returned (out of memory: for good).
        wait->awaited().request_cancel(CancelCause::stop);
        remove(*wait);
        try {
          on_running_work_.push_back(wait);
        } catch (...) {
          keep_for_good(*wait);
        }
      } else {
        wait->destroy_now();
      }
    }
    wait = next;
  }
}

bool PendingWaits::release_kept(std::chrono::steady_clock::time_point deadline) noexcept {
  auto returned = [](PendingWait* wait) { return wait->awaited().ready(); };
  // Host calls have no pool to wait for: they get the rest of the cancel deadline here.
  while (!std::all_of(on_running_work_.begin(), on_running_work_.end(), returned) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  bool frames_kept = false;
  for (PendingWait* wait : on_running_work_) {
    // A function still running now (a detached worker, a host call) keeps its waiter's
    // frame, and so the task's callable: never freed, rather than freed under it.
    if (returned(wait)) {
      wait->destroy_now();
    } else {
      frames_kept = true;
      keep_for_good(*wait);
    }
  }
  on_running_work_.clear();
  return frames_kept;
}

}  // namespace loopbridge::detail

#include "given_up.hpp"

namespace loopbridge::detail {

void GivenUp::keep_until_frame_gone(TaskBase& task) noexcept {
  task.state().add_ref();
  try {
    frames_.push_back(&task);
  } catch (...) {
    // Out of memory: its frame (and so its callable) stays for good.
  }
}

void GivenUp::release(bool frames_kept) noexcept {
  for (TaskBase* task : frames_) {
    if (!frames_kept) task->drop_function();
    // Its frames are gone: nothing uses the slot's handler (co_spawn's, which holds the
    // task) any more.
    task->cancel_signal.slot().clear();
    task->state().release();
  }
  frames_.clear();
}

std::size_t GivenUp::leave_to_io_owner() noexcept {
  const std::size_t count = frames_.size();
  for (TaskBase* task : frames_) task->state().release();  // each frame keeps its task (start_task)
  frames_.clear();
  return count;
}

void GivenUp::keep_cancel_in_progress(TaskBase& task) noexcept {
  std::erase_if(cancels_in_progress_, [](TaskBase* kept) {
    if (kept->cancel_in_progress()) return false;
    kept->state().release();
    return true;
  });
  try {
    cancels_in_progress_.push_back(&task);
    task.state().add_ref();
  } catch (...) {
    task.wait_for_canceller();  // out of memory: wait here, as the stop would
  }
}

void GivenUp::wait_for_cancellers() noexcept {
  // Their cancellers settle them; the queue is closed, so a canceller waiting for this loop
  // (a capture's destructor that submits) gets LoopStopped at once.
  for (TaskBase* task : cancels_in_progress_) {
    task->wait_for_canceller();
    task->state().release();
  }
  cancels_in_progress_.clear();
}

}  // namespace loopbridge::detail

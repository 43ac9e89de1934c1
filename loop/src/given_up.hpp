#pragma once

#include "shared_errors.hpp"

#include <loopbridge/loop/detail/task.hpp>

#include <cstddef>
#include <vector>

namespace loopbridge::detail {

/// What a loop let go of before it ended, and ends last: tasks the stop gave up while they
/// ran (abandoned or dropped: their frames wait in the io_context), and tasks whose cancel
/// claimed them before they started while the canceller still destroys their callable.
/// Also the errors many tasks are settled with. Loop thread only.
class GivenUp {
public:
  SharedErrors errors;

  /// Keeps a task the stop gave up (a reference to its state) until the io_context has
  /// destroyed its frame: only then may its callable go.
  void keep_until_frame_gone(TaskBase& task) noexcept;
  /// After the io_context's shutdown (its frames gone): lets go of those tasks, their
  /// callables first, unless a frame kept for good (its function still running) may still
  /// use them.
  void release(bool frames_kept) noexcept;
  /// A borrowed io_context keeps their frames for its owner: lets go of them (each frame
  /// keeps its task); how many there were.
  std::size_t leave_to_io_owner() noexcept;

  /// The loop met a task whose canceller still destroys its callable: kept until the stop's
  /// end, which waits for the canceller (by then it cannot be waiting for the loop).
  void keep_cancel_in_progress(TaskBase& task) noexcept;
  void wait_for_cancellers() noexcept;

private:
  std::vector<TaskBase*> frames_;
  std::vector<TaskBase*> cancels_in_progress_;
};

}  // namespace loopbridge::detail

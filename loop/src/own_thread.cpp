#include "own_thread.hpp"

#include <utility>
#include <vector>

namespace loopbridge::detail {

bool OwnThread::ended() const {
  std::lock_guard lock(mutex_);
  return joined_.has_value();
}

bool OwnThread::ending_claimed() const {
  std::lock_guard lock(mutex_);
  return ending_claimed_;
}

void OwnThread::end(bool finished) {
  // Only the claimant touches thread_ from here on.
  if (thread_.joinable()) {
    if (finished) {
      thread_.join();
    } else {
      thread_.detach();
    }
  }
  // Notified under the lock: a waiter may destroy the loop as soon as it sees joined_.
  std::lock_guard lock(mutex_);
  joined_ = finished;
  ended_.notify_all();
}

void OwnThread::ended_without_thread() {
  std::lock_guard lock(mutex_);
  joined_ = true;
  ended_.notify_all();
}

void OwnThread::detach_unclaimed() {
  std::lock_guard lock(mutex_);
  if (std::exchange(ending_claimed_, true)) return;
  if (thread_.joinable()) thread_.detach();
  joined_ = false;  // a later stop() returns at once: the thread ends alone
  ended_.notify_all();
}

void OwnThread::forget_after_fork() noexcept {
  if (!thread_.joinable()) return;
  // Kept for good, on purpose, where leak checkers see it held.
  static auto* kept = new std::vector<SystemThread>();
  try {
    kept->push_back(std::move(thread_));
  } catch (...) {
    (void)new SystemThread(std::move(thread_));  // out of memory: unreachable, but never destroyed joinable
  }
}

}  // namespace loopbridge::detail

#pragma once

#include "platform/platform.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace loopbridge::detail {

/// The loop's own thread as the host side holds it: made by start(), then joined (or
/// detached, past the stop's deadlines) once, by whichever host thread ends the loop first;
/// the others wait for that one. Its mutex is held only to read or change what it guards,
/// never across a wait: hooks and callbacks on the loop thread may call back into the loop
/// and get their answer at once.
class OwnThread {
public:
  /// Who ends the loop, as claim_ending() answers.
  enum class Claim {
    first,     ///< this caller: it waits for the thread and joins or detaches it
    ended,     ///< the loop ended already (`joined` says how)
    no_thread  ///< never started: this caller marks it stopped (ended_without_thread())
  };

  /// start() and run_here(): unless a host thread began to end the loop, runs `begin()`
  /// (which moves the loop out of `created`; false if it was not there) and adopts the
  /// thread that `make()` returns (none for run_here()), atomically with claim_ending(). False
  /// if refused. If `make` throws, the ending stays claimed, for the caller to settle
  /// (ended_without_thread()).
  template <class Begin, class Make>
  bool start_thread(Begin begin, Make make) {
    std::lock_guard lock(mutex_);
    if (ending_claimed_ || !begin()) return false;
    try {
      thread_ = make();
    } catch (...) {
      ending_claimed_ = true;
      throw;
    }
    return true;
  }
  /// stop(): claims the ending, or waits for the host thread that did (it waits no longer
  /// than its own deadline) and says how the thread ended (`joined`). `never_started()` is
  /// asked under the lock.
  template <class NeverStarted>
  Claim claim_ending(NeverStarted never_started, bool& joined) {
    std::unique_lock lock(mutex_);
    if (ending_claimed_) ended_.wait(lock, [&] { return joined_.has_value(); });
    if (joined_) {
      joined = *joined_;
      return Claim::ended;
    }
    ending_claimed_ = true;
    return never_started() ? Claim::no_thread : Claim::first;
  }
  /// True once the thread was joined or detached (or never existed and the loop stopped).
  bool ended() const;
  /// True once a host thread began to end the loop.
  bool ending_claimed() const;
  /// The claimant: joins the thread if `finished`, detaches it otherwise (run_here(): there
  /// is none). Then tells the others.
  void end(bool finished);
  /// The claimant of a loop whose thread never came to be.
  void ended_without_thread();
  /// A thread its stop must not join (a loop thread, a worker, a host call of this loop, a
  /// thread calling exit() there): detaches it, unless another claimed the ending.
  void detach_unclaimed();
  /// In a fork() child: lets go of the parent's thread without touching it (a parent thread
  /// may hold the mutex), and never destroys it joinable.
  void forget_after_fork() noexcept;
  bool joinable_thread() const noexcept { return thread_.joinable(); }

private:
  mutable std::mutex mutex_;
  std::condition_variable ended_;
  SystemThread thread_;
  bool ending_claimed_ = false;
  std::optional<bool> joined_;  // set once the thread was joined (true) or detached (false)
};

}  // namespace loopbridge::detail

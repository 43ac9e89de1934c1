#pragma once

#include <loopbridge/loop/detail/handoff_call.hpp>
#include <loopbridge/loop/detail/ref.hpp>

#include <memory>
#include <mutex>

namespace loopbridge::detail {

class StateBase;

/// One per host thread (created on its first submission): the mailbox of calls that its
/// tasks send back to it (call_host). The thread serves the mailbox while it is blocked in
/// any TaskHandle wait; a call finding it not waiting is refused at once.
class HostWaiter final : public RefCounted {
public:
  /// Loop thread: hands a call over and wakes the waiting host. False when the host is
  /// not blocked in a wait (the call was not taken).
  bool post(HandoffCall& call);

  /// Host thread, around a blocking wait on `state`: calls posted meanwhile wake that wait.
  const StateBase* begin_wait(const StateBase& state);
  void end_wait(const StateBase* previous);
  /// Host thread: runs the calls waiting in the mailbox. True if it ran any.
  bool serve();

  /// Host thread, for a call that submits and then waits (run()): calls that arrive between
  /// the two are kept for the wait instead of refused (HostCallScope), until the matching
  /// stop_expecting_calls().
  void expect_calls();
  void stop_expecting_calls() noexcept;

private:
  /// The queued calls, oldest first, once nothing on this thread waits or expects any (then
  /// they are to be refused); otherwise null. Locked.
  HandoffCall* take_refused_locked() noexcept;
  static void refuse_all(HandoffCall* calls) noexcept;

  std::mutex mutex_;
  // The mailbox, oldest first (linked by next_in_mailbox). Nothing here allocates: a wait
  // that ends must never fail to refuse what is left.
  HandoffCall* calls_head_ = nullptr;
  HandoffCall* calls_tail_ = nullptr;
  const StateBase* waiting_on_ = nullptr;
  int expecting_ = 0;
};

/// This host thread's waiter (made on first use); null on a loop thread. Also safe from the
/// destructors that run as the thread or the process ends.
Ref<HostWaiter> this_thread_host_waiter();

}  // namespace loopbridge::detail

#pragma once

#include <loopbridge/loop/detail/handoff_call.hpp>
#include <loopbridge/loop/detail/ref.hpp>

#include <deque>
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
  /// the two are kept for the wait instead of refused.
  class Expecting {
  public:
    explicit Expecting(HostWaiter& waiter);
    ~Expecting();
    Expecting(const Expecting&) = delete;
    Expecting& operator=(const Expecting&) = delete;

  private:
    HostWaiter& waiter_;
  };

private:
  /// Refuses the queued calls once nothing on this thread waits or expects any. Locked.
  std::deque<HandoffCall*> take_refused_locked();
  static void refuse_all(std::deque<HandoffCall*>& calls) noexcept;

  std::mutex mutex_;
  std::deque<HandoffCall*> calls_;
  const StateBase* waiting_on_ = nullptr;
  int expecting_ = 0;
};

/// This host thread's waiter (made on first use); null on a loop thread.
HostWaiter* this_thread_host_waiter();

}  // namespace loopbridge::detail

#include "host_waiter.hpp"

#include "loop_core.hpp"
#include "thread_roles.hpp"

#include <loopbridge/loop/detail/task_state.hpp>

#include <utility>

namespace loopbridge::detail {
namespace {

// Trivially destructible, so still readable from the destructors of thread_local and static
// objects that run after the owner below has released the waiter.
constinit thread_local HostWaiter* t_host_waiter = nullptr;
constinit thread_local bool t_host_waiter_released = false;

struct HostWaiterOwner {
  bool armed = false;
  ~HostWaiterOwner() {
    t_host_waiter_released = true;
    if (HostWaiter* waiter = std::exchange(t_host_waiter, nullptr)) waiter->release();
  }
};
thread_local HostWaiterOwner t_host_waiter_owner;

}  // namespace

Ref<HostWaiter> this_thread_host_waiter() {
  if (this_thread_core() != nullptr) return {};
  if (t_host_waiter != nullptr) return Ref<HostWaiter>::share(t_host_waiter);
  auto waiter = Ref<HostWaiter>::adopt(new HostWaiter());
  if (!t_host_waiter_released) {
    t_host_waiter_owner.armed = true;  // registers its destructor
    t_host_waiter = waiter.get();
    waiter->add_ref();
  }
  // Otherwise the thread is ending (an exit-time destructor submits work): each call gets a
  // waiter of its own. Waits work; call_host() requests from its tasks are refused.
  return waiter;
}

bool HostWaiter::post(HandoffCall& call) {
  std::lock_guard lock(mutex_);
  if (waiting_on_ == nullptr && expecting_ == 0) return false;
  call.refs().add_ref();
  call.next_in_mailbox = nullptr;
  (calls_tail_ ? calls_tail_->next_in_mailbox : calls_head_) = &call;
  calls_tail_ = &call;
  // Under the lock: the host clears waiting_on_ under it before its handle can go.
  if (waiting_on_ != nullptr) waiting_on_->interrupt_wait();
  return true;
}

void HostWaiter::expect_calls() {
  std::lock_guard lock(mutex_);
  ++expecting_;
}

void HostWaiter::stop_expecting_calls() noexcept {
  HandoffCall* refused = nullptr;
  {
    std::lock_guard lock(mutex_);
    --expecting_;
    refused = take_refused_locked();
  }
  refuse_all(refused);
}

HandoffCall* HostWaiter::take_refused_locked() noexcept {
  if (waiting_on_ != nullptr || expecting_ != 0) return nullptr;
  HandoffCall* refused = calls_head_;
  calls_head_ = calls_tail_ = nullptr;
  return refused;
}

void HostWaiter::refuse_all(HandoffCall* calls) noexcept {
  while (calls != nullptr) {
    HandoffCall* next = calls->next_in_mailbox;
    calls->refuse();
    calls->refs().release();
    calls = next;
  }
}

const StateBase* HostWaiter::begin_wait(const StateBase& state) {
  std::lock_guard lock(mutex_);
  const StateBase* previous = waiting_on_;
  waiting_on_ = &state;
  return previous;
}

void HostWaiter::end_wait(const StateBase* previous) {
  HandoffCall* refused = nullptr;
  {
    std::lock_guard lock(mutex_);
    waiting_on_ = previous;
    refused = take_refused_locked();
  }
  refuse_all(refused);
}

bool HostWaiter::serve() {
  bool ran = false;
  for (;;) {
    HandoffCall* call = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (calls_head_ == nullptr) return ran;
      call = calls_head_;
      calls_head_ = call->next_in_mailbox;
      if (calls_head_ == nullptr) calls_tail_ = nullptr;
    }
    {
      ContextScope scope{Context(call->context)};
      const LoopCore* outer_owner = exchange_this_thread_work_owner(&LoopCore::of(*call->owner));
      call->run();
      exchange_this_thread_work_owner(outer_owner);
    }
    call->refs().release();
    ran = true;
  }
}

}  // namespace loopbridge::detail

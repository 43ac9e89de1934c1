#include <loopbridge/loop/detail/host_waiter.hpp>
#include <loopbridge/loop/detail/loop_core.hpp>
#include <loopbridge/loop/detail/task_state.hpp>

namespace loopbridge::detail {
namespace {

thread_local Ref<HostWaiter> t_host_waiter;

}  // namespace

HostWaiter* this_thread_host_waiter() {
  if (this_thread_core() != nullptr) return nullptr;
  if (!t_host_waiter) t_host_waiter = Ref<HostWaiter>::adopt(new HostWaiter());
  return t_host_waiter.get();
}

bool HostWaiter::post(HandoffCall& call) {
  std::lock_guard lock(mutex_);
  if (waiting_on_ == nullptr && expecting_ == 0) return false;
  call.refs().add_ref();
  calls_.push_back(&call);
  // Under the lock: the host clears waiting_on_ under it before its handle can go.
  if (waiting_on_ != nullptr) waiting_on_->interrupt_wait();
  return true;
}

HostWaiter::Expecting::Expecting(HostWaiter& waiter) : waiter_(waiter) {
  std::lock_guard lock(waiter_.mutex_);
  ++waiter_.expecting_;
}

HostWaiter::Expecting::~Expecting() {
  std::deque<HandoffCall*> refused;
  {
    std::lock_guard lock(waiter_.mutex_);
    --waiter_.expecting_;
    refused = waiter_.take_refused_locked();
  }
  refuse_all(refused);
}

std::deque<HandoffCall*> HostWaiter::take_refused_locked() {
  std::deque<HandoffCall*> refused;
  if (waiting_on_ == nullptr && expecting_ == 0) refused.swap(calls_);
  return refused;
}

void HostWaiter::refuse_all(std::deque<HandoffCall*>& calls) noexcept {
  for (HandoffCall* call : calls) {
    call->refuse();
    call->refs().release();
  }
}

const StateBase* HostWaiter::begin_wait(const StateBase& state) {
  std::lock_guard lock(mutex_);
  const StateBase* previous = waiting_on_;
  waiting_on_ = &state;
  return previous;
}

void HostWaiter::end_wait(const StateBase* previous) {
  std::deque<HandoffCall*> refused;
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
      if (calls_.empty()) return ran;
      call = calls_.front();
      calls_.pop_front();
    }
    {
      ContextScope scope{Context(call->context)};
      call->run();
    }
    call->refs().release();
    ran = true;
  }
}

}  // namespace loopbridge::detail

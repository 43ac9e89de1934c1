#include "host_waiter.hpp"
#include "platform/platform.hpp"
#include "thread_roles.hpp"
#include <loopbridge/loop/detail/task_state.hpp>

#include <algorithm>
#include <thread>

namespace loopbridge::detail {
namespace {

// A settled sentinel for the continuation slot: never dereferenced.
Continuation* settled_marker() noexcept {
  static char marker;
  return reinterpret_cast<Continuation*>(&marker);
}

}  // namespace

void check_may_block(const char* what) {
  if (this_thread_core() != nullptr) {
    throw DeadlockError(std::string(what) +
                        " would block a loop thread (a coroutine awaits a task with co_await handle.async_get())");
  }
}

void StateBase::wait(std::chrono::nanoseconds spin) const {
  check_may_block("a TaskHandle wait");
  wait_impl(nullptr, spin);
}

bool StateBase::wait_until(std::chrono::steady_clock::time_point deadline, std::chrono::nanoseconds spin) const {
  check_may_block("a TaskHandle wait");
  return wait_impl(&deadline, spin);
}

bool StateBase::wait_impl(const std::chrono::steady_clock::time_point* deadline,
                          std::chrono::nanoseconds spin) const {
  if (ready()) return true;
  auto& word = word_;
  // While this thread waits, its tasks may call back into it (call_host).
  const Ref<HostWaiter> host = this_thread_host_waiter();
  const StateBase* outer_wait = host->begin_wait(*this);
  if (spin > std::chrono::nanoseconds::zero()) {
    if (deadline) spin = std::min(spin, std::chrono::nanoseconds(*deadline - std::chrono::steady_clock::now()));
    const std::uint32_t start = word.load(std::memory_order_acquire);
    spin_until([&] { return word.load(std::memory_order_acquire) != start; }, spin);
  }
  for (;;) {
    // Read the word before serving: a call posted after the read changes it, and the
    // wait below then returns at once.
    std::uint32_t w = word.load(std::memory_order_acquire);
    host->serve();
    if (w & kDone) break;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) break;
    if ((w & kWaiters) == 0) {
      word.compare_exchange_weak(w, w | kWaiters, std::memory_order_acq_rel, std::memory_order_acquire);
      continue;
    }
    wait_for_change(word, w, deadline);
  }
  host->end_wait(outer_wait);
  return ready();
}

void StateBase::interrupt_wait() const noexcept {
  word_.fetch_add(kHostCallUnit, std::memory_order_acq_rel);
  wake_all_waiters(word_);
}

void StateBase::publish() noexcept {
  // The continuation slot closes before the state reads as done, so that whoever sees done
  // also sees the slot closed and runs its continuation itself, at once.
  Continuation* c = continuation_.exchange(settled_marker(), std::memory_order_acq_rel);
  const std::uint32_t word = word_.fetch_or(kDone, std::memory_order_acq_rel);
  if (word & kWaiters) wake_all_waiters(word_);
  if (word & kUnread) report_unread_outcome();
  if (c != nullptr) c->on_settled();
}

void StateBase::handle_dropped() noexcept {
  // Exactly one of this and publish() sees both bits.
  if (word_.fetch_or(kUnread, std::memory_order_acq_rel) & kDone) report_unread_outcome();
}

bool StateBase::set_continuation(Continuation& c) {
  Continuation* expected = nullptr;
  if (continuation_.compare_exchange_strong(expected, &c, std::memory_order_acq_rel, std::memory_order_acquire)) {
    return true;
  }
  if (expected == settled_marker()) {
    // The settling thread is between closing the slot and marking the state done.
    while (!ready()) std::this_thread::yield();
    return false;
  }
  throw InvalidState("the task is awaited elsewhere already: one async_wait() or on_settled() at a time");
}

bool StateBase::reclaim_continuation(Continuation& c) noexcept {
  Continuation* expected = &c;
  return continuation_.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel,
                                               std::memory_order_acquire);
}

}  // namespace loopbridge::detail

#include "command_queue.hpp"

namespace loopbridge::detail {
namespace {

Command* closed_marker() noexcept {
  static char marker;
  return reinterpret_cast<Command*>(&marker);
}

// The stack holds the newest command first; the loop runs the oldest first.
Command* reverse(Command* newest_first) noexcept {
  Command* oldest_first = nullptr;
  while (newest_first) {
    Command* next = newest_first->next_in_queue;
    newest_first->next_in_queue = oldest_first;
    oldest_first = newest_first;
    newest_first = next;
  }
  return oldest_first;
}

}  // namespace

CommandQueue::PushResult CommandQueue::push(Command& command) noexcept {
  // Counted before the push, so that depth() never sees a command run before it was counted.
  pushed_.fetch_add(1, std::memory_order_relaxed);
  Command* head = head_.load(std::memory_order_relaxed);
  do {
    if (head == closed_marker()) {
      pushed_.fetch_sub(1, std::memory_order_relaxed);
      return PushResult::closed;
    }
    command.next_in_queue = head;
  } while (!head_.compare_exchange_weak(head, &command, std::memory_order_release, std::memory_order_relaxed));
  return head == nullptr ? PushResult::pushed_first : PushResult::pushed;
}

Command* CommandQueue::take_all() noexcept {
  Command* head = head_.load(std::memory_order_relaxed);
  if (head == nullptr || head == closed_marker()) return nullptr;
  return reverse(head_.exchange(nullptr, std::memory_order_acquire));
}

Command* CommandQueue::close() noexcept {
  Command* head = head_.exchange(closed_marker(), std::memory_order_acq_rel);
  return head == closed_marker() ? nullptr : reverse(head);
}

bool CommandQueue::closed() const noexcept {
  return head_.load(std::memory_order_acquire) == closed_marker();
}

}  // namespace loopbridge::detail

namespace loopbridge::detail {

bool CommandQueue::has_commands() const noexcept {
  Command* head = head_.load(std::memory_order_relaxed);
  return head != nullptr && head != closed_marker();
}

}  // namespace loopbridge::detail

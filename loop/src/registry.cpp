#include "registry.hpp"

#include "loop_core.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <pthread.h>

namespace loopbridge::detail {
namespace {

std::atomic<std::uint64_t> g_next_serial{1};

// A list touched only at creation and destruction (and by fork()).
std::mutex g_registry_mutex;
LoopCore* g_registry_head = nullptr;

// Held across the fork, so that the child sees the list whole.
void lock_registry_for_fork() noexcept { g_registry_mutex.lock(); }
void unlock_registry_after_fork() noexcept { g_registry_mutex.unlock(); }

}  // namespace

std::uint64_t Registry::next_serial() noexcept { return g_next_serial.fetch_add(1, std::memory_order_relaxed); }

void Registry::add(LoopCore& loop) {
  static const bool fork_handlers = [] {
    ::pthread_atfork(lock_registry_for_fork, unlock_registry_after_fork, &Registry::orphan_all_in_fork_child);
    return true;
  }();
  (void)fork_handlers;
  std::lock_guard lock(g_registry_mutex);
  loop.next_live_ = g_registry_head;
  if (g_registry_head) g_registry_head->prev_live_ = &loop;
  g_registry_head = &loop;
}

void Registry::remove(LoopCore& loop) noexcept {
  std::lock_guard lock(g_registry_mutex);
  (loop.prev_live_ ? loop.prev_live_->next_live_ : g_registry_head) = loop.next_live_;
  if (loop.next_live_) loop.next_live_->prev_live_ = loop.prev_live_;
}

std::vector<Ref<LoopCore>> Registry::live() {
  std::vector<Ref<LoopCore>> loops;  // released after the unlock: a last reference destroys a loop
  std::lock_guard lock(g_registry_mutex);
  for (LoopCore* core = g_registry_head; core != nullptr; core = core->next_live_) {
    loops.emplace_back();  // may throw: before a reference is taken
    if (core->state() != LoopState::stopped && core->try_add_ref()) {
      loops.back() = Ref<LoopCore>::adopt(core);
    } else {
      loops.pop_back();
    }
  }
  std::reverse(loops.begin(), loops.end());
  return loops;
}

void Registry::orphan_all_in_fork_child() noexcept {
  g_forked_child.store(true, std::memory_order_relaxed);
  for (LoopCore* core = g_registry_head; core != nullptr; core = core->next_live_) core->orphan_in_fork_child();
  g_registry_mutex.unlock();
}

void LoopCore::orphan_in_fork_child() noexcept {
  // A loop never started has no thread to miss: the child may start it.
  if (phase() == Phase::created && !admission_.is_open()) return;
  forked_away_.store(true, std::memory_order_relaxed);
  admission_.close_in_fork_child();
  enter(Phase::stopped);
  // Lock-free: every push fails from now on, so nothing in the child reaches the loop's
  // io_context, whose locks a parent thread may have held at the fork.
  drain_.close_without_draining();
}

void LoopCore::check_not_forked_away() const {
  if (forked_away()) throw LoopStopped(kForkedAway);
}

ShutdownReport LoopCore::report_in_fork_child() const noexcept {
  // The latches' mutex may have been held by a thread of the parent: counts only.
  ShutdownReport report;
  snapshot().fill(report);
  report.joined = false;
  return report;
}

void check_loop_not_forked_away(const Engine* loop) {
  if (loop != nullptr) LoopCore::of(*loop).check_not_forked_away();
}

}  // namespace loopbridge::detail

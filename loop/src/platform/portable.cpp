// The engine's system calls in standard C++, for systems other than Linux and for Linux
// built with LOOPBRIDGE_PORTABLE_FALLBACKS=ON: std::atomic::wait, hardware_concurrency, and
// no thread pinning.

#include "platform/platform.hpp"

#include <loopbridge/loop/platform.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace loopbridge::detail {
namespace {

// std::atomic::wait has no deadline. A wait with one sleeps on a condition variable instead,
// one of a few shared by address; wake_all_waiters() wakes both kinds.
struct TimedWaiters {
  std::mutex mutex;
  std::condition_variable changed;
};

// Never destroyed: a static destructor may still wait on a task during exit. Not on the heap
// either: a wait must not fail for want of memory.
union TimedWaitersTable {
  std::array<TimedWaiters, 32> waiters;
  TimedWaitersTable() : waiters() {}
  ~TimedWaitersTable() {}
};

TimedWaiters& timed_waiters_of(const std::atomic<std::uint32_t>& word) {
  static TimedWaitersTable table;
  const auto address = reinterpret_cast<std::uintptr_t>(&word);
  return table.waiters[(address / alignof(std::max_align_t)) % table.waiters.size()];
}

}  // namespace

void wait_for_change(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     const std::chrono::steady_clock::time_point* deadline) noexcept {
  if (!deadline) {
    word.wait(expected, std::memory_order_acquire);
    return;
  }
  TimedWaiters& waiters = timed_waiters_of(word);
  std::unique_lock lock(waiters.mutex);
  waiters.changed.wait_until(lock, *deadline, [&] { return word.load(std::memory_order_acquire) != expected; });
}

void wake_all_waiters(std::atomic<std::uint32_t>& word) noexcept {
  word.notify_all();
  TimedWaiters& waiters = timed_waiters_of(word);
  // A timed waiter that read the old value holds the mutex until it sleeps: once the mutex
  // is ours, it is asleep and the notification reaches it.
  { std::lock_guard lock(waiters.mutex); }
  waiters.changed.notify_all();
}

std::size_t usable_cpus() { return std::max(1u, std::thread::hardware_concurrency()); }

std::size_t present_cpus() { return usable_cpus(); }

void pin_this_thread(const std::vector<unsigned>& cpus) { (void)cpus; }

}  // namespace loopbridge::detail

namespace loopbridge {

PlatformInfo platform_info() noexcept {
  return {.portable_fallbacks = true,
          .blocking_wait = "std::atomic::wait",
          .cpu_count = "std::thread::hardware_concurrency",
          .thread_naming = detail::thread_naming_call(),
          .cpu_pinning = {}};
}

}  // namespace loopbridge

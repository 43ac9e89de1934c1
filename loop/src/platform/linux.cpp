// The engine's system calls on Linux: futex waits, the affinity mask and cgroup CPU quota,
// pthread_setaffinity_np.

#include "platform/platform.hpp"

#include "cpu_quota.hpp"

#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/platform.hpp>

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <string>
#include <thread>

namespace loopbridge::detail {

// The deadline is absolute on CLOCK_MONOTONIC, which is steady_clock's clock on Linux.
void wait_for_change(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     const std::chrono::steady_clock::time_point* deadline) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count();
    if (ns < 0) ns = 0;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET_PRIVATE, expected, tsp,
            nullptr, FUTEX_BITSET_MATCH_ANY);
}

void wake_all_waiters(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr,
            0);
}

std::size_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::size_t cpus = ::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0
                         ? static_cast<std::size_t>(CPU_COUNT(&set))
                         : std::max(1u, std::thread::hardware_concurrency());
  if (auto quota = cgroup_cpu_limit()) cpus = std::min(cpus, *quota);
  return cpus;
}

std::size_t present_cpus() {
  const long count = ::sysconf(_SC_NPROCESSORS_CONF);
  return std::min<std::size_t>(count > 0 ? static_cast<std::size_t>(count) : 1, CPU_SETSIZE);
}

// The kernel intersects the mask with the CPUs this process may use and fails only when
// nothing is left: read it back to refuse a partial pinning as well.
void pin_this_thread(const std::vector<unsigned>& cpus) {
  cpu_set_t wanted;
  CPU_ZERO(&wanted);
  for (unsigned cpu : cpus) CPU_SET(cpu, &wanted);
  if (::pthread_setaffinity_np(::pthread_self(), sizeof wanted, &wanted) != 0) {
    throw InvalidArgument(
        "cpu_affinity: this process may not use any of the CPUs asked for (cpuset or container limits)");
  }
  cpu_set_t granted;
  CPU_ZERO(&granted);
  ::pthread_getaffinity_np(::pthread_self(), sizeof granted, &granted);
  for (unsigned cpu : cpus) {
    if (!CPU_ISSET(cpu, &granted)) {
      throw InvalidArgument("cpu_affinity: this process may not use CPU " + std::to_string(cpu) +
                            " (cpuset or container limits)");
    }
  }
}

}  // namespace loopbridge::detail

namespace loopbridge {

PlatformInfo platform_info() noexcept {
  return {.portable_fallbacks = false,
          .blocking_wait = "futex",
          .cpu_count = "sched_getaffinity and the cgroup CPU quota",
          .thread_naming = detail::thread_naming_call(),
          .cpu_pinning = "pthread_setaffinity_np"};
}

}  // namespace loopbridge

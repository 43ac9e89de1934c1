#pragma once

#include <string_view>

namespace loopbridge {

/// What this build of loopbridge uses from the operating system.
/**
 * On Linux, loopbridge uses Linux's own calls: a host thread blocked on a TaskHandle sleeps
 * on a futex, LoopPool counts the CPUs of the thread's affinity mask capped by the cgroup
 * CPU quota, and LoopOptions::cpu_affinity pins with pthread_setaffinity_np. On other
 * systems, and on Linux when built with the CMake option LOOPBRIDGE_PORTABLE_FALLBACKS=ON,
 * it uses portable fallbacks: std::atomic::wait, std::thread::hardware_concurrency, and no
 * pinning. Loop and worker threads are named with the system's own call wherever it has
 * one. docs/portability.md compares the two, system by system.
 *
 * An empty string says that the facility is missing from this build.
 */
struct PlatformInfo {
  /// True when built with the portable fallbacks.
  bool portable_fallbacks = false;
  /// How a host thread blocked on a TaskHandle sleeps: "futex" or "std::atomic::wait".
  std::string_view blocking_wait;
  /// What LoopPool's default size counts: "sched_getaffinity and the cgroup CPU quota" or
  /// "std::thread::hardware_concurrency".
  std::string_view cpu_count;
  /// The call that names loop and worker threads ("pthread_setname_np",
  /// "pthread_set_name_np"). Empty: threads keep the name the system gave them.
  std::string_view thread_naming;
  /// The call that applies LoopOptions::cpu_affinity ("pthread_setaffinity_np"). Empty:
  /// the CPUs asked for are still checked to exist, then the loop thread runs unpinned.
  std::string_view cpu_pinning;
};

/// The operating-system facilities this build of loopbridge uses.
/**
 * @par Thread safety
 * Safe from any thread, at any time: the answer is fixed when loopbridge is built.
 */
PlatformInfo platform_info() noexcept;

}  // namespace loopbridge

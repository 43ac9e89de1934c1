#pragma once

// What the engine asks of the operating system, in one place. platform/linux.cpp answers
// with Linux's own calls, platform/portable.cpp with the C++ standard library; CMake builds
// the portable one off Linux, and on Linux when LOOPBRIDGE_PORTABLE_FALLBACKS is ON.
// platform/thread_name.cpp, built everywhere, names threads with each system's own call.
// docs/portability.md compares what each gives.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace loopbridge::detail {

/// Blocks while `word` holds `expected`, until `deadline` if there is one. May return early
/// or spuriously: callers read the word again.
void wait_for_change(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     const std::chrono::steady_clock::time_point* deadline) noexcept;

/// Wakes every thread blocked in wait_for_change() on `word`; change the word first.
void wake_all_waiters(std::atomic<std::uint32_t>& word) noexcept;

/// The CPUs this thread may use, as LoopPool's default size counts them. At least 1.
std::size_t usable_cpus();

/// The CPUs the machine has: LoopOptions::cpu_affinity numbers them from 0 to this less
/// one. At least 1.
std::size_t present_cpus();

/// Pins the calling thread to `cpus` (each below present_cpus()). Throws InvalidArgument
/// when this process may not use all of them. Does nothing where threads cannot be pinned.
void pin_this_thread(const std::vector<unsigned>& cpus);

/// Gives the calling thread `name` as the system shows it (debuggers, top -H, crash
/// reports). `name` must already fit the system's limit (15 bytes on Linux): it is not cut
/// here. Does nothing where threads have no names, or when the system refuses the name.
void set_this_thread_os_name(const char* name) noexcept;

/// The call set_this_thread_os_name() makes, or empty where it does nothing.
std::string_view thread_naming_call() noexcept;

}  // namespace loopbridge::detail

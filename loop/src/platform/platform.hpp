#pragma once

// What the engine asks of the operating system, in one place. platform/linux.cpp answers
// with Linux's own calls, platform/portable.cpp with the C++ standard library; CMake builds
// the portable one off Linux, and on Linux when LOOPBRIDGE_PORTABLE_FALLBACKS is ON.
// platform/thread_name.cpp, built everywhere, names threads with each system's own call;
// platform/thread.cpp, built everywhere, starts the engine's threads with POSIX threads.
// docs/portability.md compares what each gives.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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

/// A thread the engine starts (the loop's own, to_thread's workers): std::thread's shape, with
/// the stack size it cannot set and a join bounded by a deadline. Joinable from its start
/// until join() or detach(); destroying or assigning over a joinable one calls
/// std::terminate(), as std::thread does.
class SystemThread {
public:
  SystemThread() noexcept = default;
  /// Runs `body` on a new thread with a stack of `stack_size` bytes: 0 for the system's
  /// default, otherwise raised to the system's minimum and rounded up to whole pages. Throws
  /// std::system_error when the system cannot create the thread.
  explicit SystemThread(std::function<void()> body, std::size_t stack_size = 0);
  SystemThread(SystemThread&& other) noexcept;
  SystemThread& operator=(SystemThread&& other) noexcept;
  ~SystemThread();

  bool joinable() const noexcept { return started_ != nullptr; }
  /// Waits for the thread to end. Throws std::system_error if it is the calling thread.
  void join();
  /// Lets the thread end alone.
  void detach();
  /// Joins the thread if its body returns before `deadline`; false (still joinable) if not.
  bool try_join_until(std::chrono::steady_clock::time_point deadline);

  struct Started;  // what the thread shares with its handle

private:
  std::shared_ptr<Started> started_;
};

}  // namespace loopbridge::detail

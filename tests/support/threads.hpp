#pragma once

// Sync points on other threads, read from the kernel: a thread asleep inside a blocking call,
// a thread that has ended (thread_state() is 0). They let a test wait for the moment it
// names instead of sleeping and hoping that moment has come.

#include "support/deadline.hpp"

#include <sched.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <vector>

namespace loopbridge::test {

/// The CPUs the calling thread may run on.
inline std::vector<unsigned> cpus_of_this_thread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  ::sched_getaffinity(0, sizeof set, &set);
  std::vector<unsigned> cpus;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

/// The calling thread's kernel id.
inline pid_t this_thread_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// The state of thread `tid` of this process, as /proc/self/task/<tid>/stat gives it: 'R'
/// running or runnable, 'S' asleep (a futex, a condition variable, a timed wait), 'D' asleep
/// uninterruptibly; 0 when the thread has gone.
inline char thread_state(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  // "tid (comm) S ...": the name may hold spaces and parentheses, the last ')' ends it.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return 0;
  return line[close + 2];
}

/// A thread about to make a blocking call marks itself with entering(); the test then waits
/// with wait_until_asleep() until the kernel shows that thread asleep, that is, inside the
/// call. Between the mark and the call the thread runs only the call's own code.
class BlockingCall {
public:
  /// On the thread that is about to block.
  void entering() { tid_.store(this_thread_tid()); }
  /// Whether the thread that called entering() is asleep now.
  bool asleep() const {
    const pid_t tid = tid_.load();
    if (tid == 0) return false;
    const char state = thread_state(tid);
    return state == 'S' || state == 'D';
  }
  /// Waits (bounded) until it is; true if it was seen asleep.
  bool wait_until_asleep(std::chrono::milliseconds deadline = kDeadline) const {
    return eventually([&] { return asleep(); }, deadline);
  }

private:
  std::atomic<pid_t> tid_{0};
};

}  // namespace loopbridge::test

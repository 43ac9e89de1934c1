#pragma once

// Every wait in the tests has a deadline, so a bug fails the test instead of hanging it.

#include <loopbridge/loop/task_handle.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <dirent.h>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace loopbridge::test {

using namespace std::chrono_literals;

inline constexpr auto kDeadline = 10s;

/// Requires that the handle settles within the deadline.
template <class T>
void require_settles(const TaskHandle<T>& handle, std::chrono::milliseconds deadline = kDeadline) {
  REQUIRE(handle.wait_for(deadline) == std::future_status::ready);
}

/// Polls `condition` until it holds or the deadline passes; returns whether it held.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds deadline = kDeadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

/// The names of this process's threads, from /proc/self/task/*/comm.
inline std::vector<std::string> thread_names() {
  std::vector<std::string> names;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      names.push_back(name);
    }
    ::closedir(dir);
  }
  return names;
}

/// A gate a test opens to let blocked loop work go on.
class Gate {
public:
  void open() {
    open_.store(true);
    open_.notify_all();
  }
  /// Waits (bounded) for open(); true if it opened.
  bool wait(std::chrono::milliseconds deadline = kDeadline) const {
    return eventually([&] { return open_.load(); }, deadline);
  }

private:
  std::atomic<bool> open_{false};
};

/// Occupies a loop's thread with a callable until release() (or the deadline), so that
/// commands queue up behind it.
class LoopBlocker {
public:
  template <class Loop>
  explicit LoopBlocker(Loop& loop)
      : task_(loop.submit([this] {
          entered_.open();
          release_.wait();
        })) {
    REQUIRE(entered_.wait());
  }
  void release() { release_.open(); }
  ~LoopBlocker() {
    release();
    task_.wait_for(kDeadline);  // the callable reads our gates until it returns
  }

private:
  Gate entered_;
  Gate release_;
  TaskHandle<void> task_;
};

}  // namespace loopbridge::test

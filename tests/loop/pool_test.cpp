// LoopPool: round-robin and keyed submission, stop and cancel-all across loops, metrics.

#include <loopbridge/loop/loop_pool.hpp>
#include <loopbridge/loop/platform.hpp>
#include "cpu_quota.hpp"

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

std::string loop_of_caller() { return std::string(current_loop()->name()); }

cpu_set_t affinity_of_this_thread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
  return set;
}

// Narrows this thread's CPUs for the scope, as a taskset or a container's cpuset would.
class NarrowedAffinity {
public:
  explicit NarrowedAffinity(unsigned cpu) : saved_(affinity_of_this_thread()) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
  }
  ~NarrowedAffinity() { ::sched_setaffinity(0, sizeof saved_, &saved_); }
  NarrowedAffinity(const NarrowedAffinity&) = delete;
  NarrowedAffinity& operator=(const NarrowedAffinity&) = delete;

private:
  cpu_set_t saved_;
};

// A cgroup hierarchy in a temporary folder: /proc/self/cgroup's text and the files under
// /sys/fs/cgroup, as a container runtime lays them out.
class FakeCgroups {
public:
  FakeCgroups()
      : root_(std::filesystem::temp_directory_path() /
              ("lb-cgroups-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
    std::filesystem::create_directories(root_);
  }
  ~FakeCgroups() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  FakeCgroups(const FakeCgroups&) = delete;
  FakeCgroups& operator=(const FakeCgroups&) = delete;

  void membership(const std::string& text) { write(root_ / "self-cgroup", text); }
  void file(const std::string& path, const std::string& text) { write(root_ / "fs" / path, text); }
  std::optional<std::size_t> limit() const { return detail::cgroup_cpu_limit(root_ / "self-cgroup", root_ / "fs"); }

private:
  static void write(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  static inline int counter_ = 0;
  std::filesystem::path root_;
};

}  // namespace

TEST_CASE("a cgroup v2 CPU quota caps the CPU count at its smallest level, rounded up", "[loop][pool][cpu-quota]") {
  FakeCgroups cgroups;
  cgroups.membership("0::/kubepods/pod1/app\n");
  cgroups.file("cpu.max", "max 100000\n");
  CHECK_FALSE(cgroups.limit().has_value());
  cgroups.file("kubepods/cpu.max", "400000 100000\n");
  CHECK(cgroups.limit() == 4u);
  cgroups.file("kubepods/pod1/app/cpu.max", "150000 100000\n");
  CHECK(cgroups.limit() == 2u);
  cgroups.file("kubepods/pod1/cpu.max", "50000 100000\n");
  CHECK(cgroups.limit() == 1u);
}

TEST_CASE("a cgroup v1 CFS quota caps the CPU count and -1 means none", "[loop][pool][cpu-quota]") {
  FakeCgroups cgroups;
  cgroups.membership("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n");
  cgroups.file("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
  cgroups.file("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  CHECK_FALSE(cgroups.limit().has_value());
  cgroups.file("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
  CHECK(cgroups.limit() == 3u);
}

TEST_CASE("inside a cgroup namespace the mount's own quota counts", "[loop][pool][cpu-quota]") {
  FakeCgroups cgroups;
  // The process's path is not under the mount: the mount is its cgroup.
  cgroups.membership("0::/system.slice/docker-abc.scope\n");
  cgroups.file("cpu.max", "200000 100000\n");
  CHECK(cgroups.limit() == 2u);
}

TEST_CASE("no cgroup file or an unreadable one means no quota", "[loop][pool][cpu-quota]") {
  FakeCgroups cgroups;
  CHECK_FALSE(cgroups.limit().has_value());
  cgroups.membership("0::/app\n");
  cgroups.file("app/cpu.max", "garbage\n");
  CHECK_FALSE(cgroups.limit().has_value());
}

TEST_CASE("a pool defaults to one loop per CPU this thread may use with numbered thread names", "[loop][pool][start]") {
  const cpu_set_t usable = affinity_of_this_thread();
  LoopPool pool({.loop = {.name = "pool"}});
  const auto cpus = static_cast<std::size_t>(CPU_COUNT(&usable));
  if (platform_info().portable_fallbacks) {
    CHECK(pool.size() == std::max(1u, std::thread::hardware_concurrency()));
  } else {
    CHECK(pool.size() == std::min(cpus, detail::cgroup_cpu_limit().value_or(cpus)));
  }
  pool.start();
  CHECK(pool.loop(0).name() == "pool0");
  pool.stop();
}

TEST_CASE("a pool made under a narrowed cpuset sizes itself to the CPUs left", "[loop][pool][start][cpu-quota]") {
  cpu_set_t usable = affinity_of_this_thread();
  unsigned first = 0;
  while (!CPU_ISSET(first, &usable)) ++first;
  if (CPU_COUNT(&usable) < 2) WARN("one usable CPU: narrowing changes nothing to tell apart");
  NarrowedAffinity narrowed(first);
  LoopPool pool({.loop = {.name = "narrow"}});
  if (platform_info().portable_fallbacks) {
    CHECK(pool.size() == std::max(1u, std::thread::hardware_concurrency()));  // blind to the cpuset
  } else {
    CHECK(pool.size() == 1);
  }
  pool.start();
  auto answer = pool.loop(0).submit([] { return 7; });
  require_settles(answer);
  CHECK(answer.get() == 7);
  pool.stop();
}

TEST_CASE("round-robin submission spreads work over every loop", "[loop][pool][submit]") {
  LoopPool pool({.loops = 3, .loop = {.name = "rr"}});
  pool.start();
  std::map<std::string, int> per_loop;
  std::vector<TaskHandle<std::string>> handles;
  for (int i = 0; i < 30; ++i) handles.push_back(pool.submit(loop_of_caller));
  for (auto& h : handles) ++per_loop[h.get()];
  REQUIRE(per_loop.size() == 3);
  for (auto& [name, count] : per_loop) CHECK(count == 10);
  CHECK(pool.stats().completed == 30);
}

TEST_CASE("keyed submission sends the same key to the same loop every time", "[loop][pool][submit]") {
  LoopPool pool({.loops = 4, .loop = {.name = "keyed"}});
  pool.start();
  std::set<std::string> loops_used;
  for (int key = 0; key < 64; ++key) {
    std::set<std::string> loops_for_key;
    for (int round = 0; round < 5; ++round) {
      auto where = pool.submit_keyed(key, loop_of_caller);
      loops_for_key.insert(where.get());
    }
    CHECK(loops_for_key.size() == 1);
    CHECK(*loops_for_key.begin() == std::string(pool.for_key(key).name()));
    loops_used.insert(*loops_for_key.begin());
  }
  CHECK(loops_used.size() == 4);  // 64 keys spread over all of them
  auto by_name = pool.submit_keyed(std::string("user-42"), loop_of_caller);
  CHECK(by_name.get() == std::string(pool.for_key(std::string("user-42")).name()));
}

TEST_CASE("cancel_all_and_wait and stop act on every loop and the stats add up", "[loop][pool][stop][stats]") {
  LoopPool pool({.loops = 3, .loop = {.name = "pstop"}});
  pool.start();
  std::vector<TaskHandle<void>> parked;
  for (int i = 0; i < 6; ++i) {
    parked.push_back(pool.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); }));
  }
  REQUIRE(eventually([&] { return pool.stats().running == 6; }));
  CHECK_THROWS_AS(pool.cancel_all_and_wait(-1ms), InvalidArgument);
  CHECK(pool.stats().in_flight == 6);
  CHECK(pool.cancel_all_and_wait() == 6);
  for (auto& h : parked) REQUIRE_THROWS_AS(h.get(), TaskCancelled);

  for (int i = 0; i < 3; ++i) {
    parked[static_cast<std::size_t>(i)] =
        pool.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  }
  pool.post([] {});
  auto report = pool.stop();
  CHECK(report.joined);
  CHECK(report.submitted == 10);
  CHECK(report.cancelled + report.completed == 10);  // the post is cancelled too if still queued
  for (std::size_t i = 0; i < 3; ++i) REQUIRE_THROWS_AS(parked[i].get(), TaskCancelled);
  LoopStats s = pool.stats();
  CHECK(s.submitted == s.completed + s.failed + s.cancelled + s.rejected + s.abandoned + s.in_flight);
  auto late = pool.submit([] { return 1; });
  REQUIRE_THROWS_AS(late.get(), LoopStopped);
}

TEST_CASE("pool hooks run on every loop and the destructor stops every loop", "[loop][pool][hooks]") {
  std::atomic<int> started{0}, stopped{0};
  {
    LoopPool pool({.loops = 2, .loop = {.name = "phooks"}});
    pool.on_start_stop(
        [&]() -> asio::awaitable<void> {
          ++started;
          co_return;
        },
        [&]() -> asio::awaitable<void> {
          ++stopped;
          co_return;
        });
    pool.start();
    CHECK(started.load() == 2);
    pool.post([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  }
  CHECK(stopped.load() == 2);
}

TEST_CASE("pool stop and cancel_all_and_wait on a loop thread throw DeadlockError and change nothing",
          "[loop][pool][deadlock]") {
  LoopPool pool({.loops = 2, .loop = {.name = "pdead"}});
  pool.start();
  auto parked = pool.loop(1).submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  REQUIRE(eventually([&] { return pool.stats().running == 1; }));
  auto from_loop = pool.loop(0).submit([&] {
    int refused = 0;
    try {
      pool.cancel_all_and_wait(1s);
    } catch (const DeadlockError&) {
      ++refused;
    }
    try {
      pool.stop();
    } catch (const DeadlockError&) {
      ++refused;
    }
    return refused;
  });
  require_settles(from_loop);
  CHECK(from_loop.get() == 2);
  CHECK_FALSE(parked.ready());
  CHECK(pool.loop(0).state() == LoopState::running);
  CHECK(pool.loop(1).state() == LoopState::running);
  CHECK(pool.cancel_all_and_wait(std::chrono::nanoseconds::max()) == 1);  // no limit, not an instant timeout
  CHECK_THROWS_AS(parked.get(), TaskCancelled);
  CHECK(pool.stop().joined);
}

TEST_CASE("a second pool start throws InvalidState and leaves the running pool alone", "[loop][pool][start]") {
  LoopPool pool({.loops = 2, .loop = {.name = "ptwice"}});
  pool.start();
  auto parked = pool.loop(1).submit([]() -> asio::awaitable<int> {
    co_await sleep_for(50ms);
    co_return 1;
  });
  CHECK_THROWS_AS(pool.start(), InvalidState);
  CHECK(pool.loop(0).state() == LoopState::running);
  CHECK(pool.loop(1).state() == LoopState::running);
  require_settles(parked);
  CHECK(parked.get() == 1);
  auto after = pool.submit([] { return 2; });
  require_settles(after);
  CHECK(after.get() == 2);
  CHECK(pool.stop().joined);
}

TEST_CASE("a pool whose loop fails to start leaves every loop stopped", "[loop][pool][start]") {
  LoopPool pool({.loops = 3, .loop = {.name = "pfail"}});
  std::atomic<int> starts{0};
  pool.on_start_stop(
      [&]() -> asio::awaitable<void> {
        if (starts.fetch_add(1) == 1) throw std::runtime_error("second loop refuses");
        co_return;
      },
      []() -> asio::awaitable<void> { co_return; });
  CHECK_THROWS_AS(pool.start(), std::runtime_error);
  for (std::size_t i = 0; i < pool.size(); ++i) {
    CHECK(pool.loop(i).state() == LoopState::stopped);
    auto refused = pool.loop(i).submit([] { return 1; });
    REQUIRE(refused.ready());
    CHECK_THROWS_AS(refused.get(), LoopStopped);
  }
}

// The operating system's part of the engine: which implementation this build uses, and what
// each of its calls does (Linux's own, or the portable fallbacks of a
// LOOPBRIDGE_PORTABLE_FALLBACKS build).

#include <loopbridge/loop/platform.hpp>

#include "platform/platform.hpp"

#include "support/deadline.hpp"
#include "support/threads.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// Runs `body` on a thread of its own; true if it ended within the deadline. A body that
// hangs is left behind (detached), holding what it shares through `body`'s captures, so
// that the test fails instead of hanging.
template <class Body>
bool ends_within(std::chrono::milliseconds deadline, Body body) {
  auto ended = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([ended, body = std::move(body)]() mutable {
    body();
    ended->store(true);
  });
  const bool in_time = eventually([&] { return ended->load(); }, deadline);
  if (in_time) {
    thread.join();
  } else {
    thread.detach();
  }
  return in_time;
}

struct SharedWord {
  std::atomic<std::uint32_t> word{0};
  std::atomic<int> waiting{0};
  std::atomic<int> woken{0};
};

}  // namespace

TEST_CASE("platform_info says which implementation this build uses", "[loop][platform]") {
  //! [platform-info]
  const loopbridge::PlatformInfo platform = loopbridge::platform_info();
  std::cout << "portable fallbacks: " << (platform.portable_fallbacks ? "yes" : "no") << "\n"
            << "blocking wait:      " << platform.blocking_wait << "\n"
            << "CPU count:          " << platform.cpu_count << "\n"
            << "thread names:       " << (platform.thread_naming.empty() ? "none" : platform.thread_naming) << "\n"
            << "CPU pinning:        " << (platform.cpu_pinning.empty() ? "none" : platform.cpu_pinning) << "\n";
  //! [platform-info]
  // The build's choice, as CMake made it: LOOPBRIDGE_PORTABLE_FALLBACKS, or a system other
  // than Linux.
  CHECK(platform.portable_fallbacks == (LOOPBRIDGE_TEST_PORTABLE_FALLBACKS != 0));
  CHECK(platform.blocking_wait == (platform.portable_fallbacks ? "std::atomic::wait" : "futex"));
  CHECK(platform.cpu_count == (platform.portable_fallbacks ? "std::thread::hardware_concurrency"
                                                           : "sched_getaffinity and the cgroup CPU quota"));
  CHECK(platform.cpu_pinning == (platform.portable_fallbacks ? "" : "pthread_setaffinity_np"));
  CHECK(platform.thread_naming == "pthread_setname_np");  // Linux has it, fallbacks or not
}

TEST_CASE("wake_all_waiters wakes every waiter on the word, with a deadline or without",
          "[loop][platform]") {
  auto shared = std::make_shared<SharedWord>();
  std::vector<std::thread> waiters;
  for (bool with_deadline : {false, true, false, true}) {
    waiters.emplace_back([shared, with_deadline] {
      // Far enough that only the wake can end the wait.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
      shared->waiting.fetch_add(1);
      while (shared->word.load() == 0) detail::wait_for_change(shared->word, 0, with_deadline ? &deadline : nullptr);
      shared->woken.fetch_add(1);
    });
  }
  CHECK(eventually([&] { return shared->waiting.load() == 4; }));
  shared->word.store(1);
  detail::wake_all_waiters(shared->word);
  const bool all_woken = eventually([&] { return shared->woken.load() == 4; });
  CHECK(all_woken);
  for (auto& waiter : waiters) {
    if (all_woken) {
      waiter.join();
    } else {
      waiter.detach();  // still asleep: it holds `shared`, and the test fails instead of hanging
    }
  }
}

TEST_CASE("a wait with a deadline returns by the deadline when nothing wakes it", "[loop][platform]") {
  auto shared = std::make_shared<SharedWord>();
  auto overshoot = std::make_shared<std::chrono::nanoseconds>();
  CHECK(ends_within(kDeadline, [shared, overshoot] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
    // Early returns are allowed: wait again until the deadline has passed.
    while (std::chrono::steady_clock::now() < deadline) detail::wait_for_change(shared->word, 0, &deadline);
    *overshoot = std::chrono::steady_clock::now() - deadline;
  }));
  CHECK(*overshoot < std::chrono::seconds(1));
}

TEST_CASE("a wait on a word that no longer holds the expected value returns at once", "[loop][platform]") {
  auto shared = std::make_shared<SharedWord>();
  shared->word.store(3);
  CHECK(ends_within(kDeadline, [shared] { detail::wait_for_change(shared->word, 0, nullptr); }));
  CHECK(ends_within(kDeadline, [shared] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
    detail::wait_for_change(shared->word, 0, &deadline);
  }));
}

TEST_CASE("the CPU counts are at least one, and the usable CPUs are among the present ones", "[loop][platform]") {
  const std::size_t usable = detail::usable_cpus();
  const std::size_t present = detail::present_cpus();
  CHECK(usable >= 1);
  CHECK(present >= usable);
  if (platform_info().portable_fallbacks) {
    CHECK(usable == std::max(1u, std::thread::hardware_concurrency()));
  } else {
    CHECK(usable <= cpus_of_this_thread().size());
  }
}

TEST_CASE("set_this_thread_os_name names the calling thread where the system has names", "[loop][platform]") {
  std::string name_after;
  std::thread([&] {
    detail::set_this_thread_os_name("lb-os-name");
    char name[16] = {};
    ::pthread_getname_np(::pthread_self(), name, sizeof name);
    name_after = name;
  }).join();
  if (platform_info().thread_naming.empty()) {
    CHECK(name_after != "lb-os-name");
  } else {
    CHECK(name_after == "lb-os-name");
  }
}

TEST_CASE("pin_this_thread pins where the system can, and otherwise leaves the thread's CPUs alone",
          "[loop][platform]") {
  std::vector<unsigned> before;
  std::vector<unsigned> after;
  std::thread([&] {
    before = cpus_of_this_thread();
    detail::pin_this_thread({before.back()});
    after = cpus_of_this_thread();
  }).join();
  if (platform_info().cpu_pinning.empty()) {
    CHECK(after == before);
  } else {
    CHECK(after == std::vector<unsigned>{before.back()});
  }
}

TEST_CASE("a SystemThread runs its body once, on a stack of at least the size asked for", "[loop][platform]") {
  constexpr std::size_t kStack = 100'000;  // not a whole number of pages: rounded up
  std::atomic<int> runs{0};
  std::size_t stack = 0;
  detail::SystemThread thread(
      [&] {
        ++runs;
        pthread_attr_t attributes;
        if (::pthread_getattr_np(::pthread_self(), &attributes) == 0) {
          ::pthread_attr_getstacksize(&attributes, &stack);
          ::pthread_attr_destroy(&attributes);
        }
      },
      kStack);
  CHECK(thread.joinable());
  thread.join();
  CHECK_FALSE(thread.joinable());
  CHECK(runs == 1);
  CHECK(stack >= kStack);
}

TEST_CASE("try_join_until leaves a thread that still runs joinable, and joins one whose body returned",
          "[loop][platform]") {
  auto release = std::make_shared<std::atomic<bool>>(false);
  detail::SystemThread thread([release] { eventually([&] { return release->load(); }); });
  CHECK_FALSE(thread.try_join_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(1)));
  CHECK(thread.joinable());
  release->store(true);
  CHECK(thread.try_join_until(std::chrono::steady_clock::now() + kDeadline));
  CHECK_FALSE(thread.joinable());
}

TEST_CASE("a detached SystemThread runs to its end alone", "[loop][platform]") {
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto ended = std::make_shared<std::atomic<bool>>(false);
  detail::SystemThread thread([release, ended] {
    eventually([&] { return release->load(); });
    ended->store(true);
  });
  thread.detach();
  CHECK_FALSE(thread.joinable());
  release->store(true);
  CHECK(eventually([&] { return ended->load(); }));
}

TEST_CASE("a SystemThread cannot join itself", "[loop][platform]") {
  detail::SystemThread thread;
  std::atomic<bool> started{false};
  bool refused = false;
  thread = detail::SystemThread([&] {
    eventually([&] { return started.load(); });
    try {
      thread.join();
    } catch (const std::system_error& e) {
      refused = e.code() == std::errc::resource_deadlock_would_occur;
    }
  });
  started.store(true);
  thread.join();
  CHECK(refused);
}

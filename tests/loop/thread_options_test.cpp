#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/platform.hpp>

#include "support/deadline.hpp"
#include "support/threads.hpp"
#include "support/line_server.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

struct SetupFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

TEST_CASE("cpu_affinity pins the loop thread to the CPUs given, where threads can be pinned",
          "[loop][thread-options]") {
  const std::vector<unsigned> starter_cpus = cpus_of_this_thread();
  const unsigned last = starter_cpus.back();
  BackgroundLoop loop({.name = "lb-pinned", .cpu_affinity = {last}});
  loop.start();
  auto cpus = loop.submit([] { return cpus_of_this_thread(); });
  require_settles(cpus);
  if (platform_info().cpu_pinning.empty()) {
    CHECK(cpus.get() == starter_cpus);  // checked, then left as the starting thread's
  } else {
    CHECK(cpus.get() == std::vector<unsigned>{last});
  }
  // The worker threads and the host are not pinned by it.
  CHECK(cpus_of_this_thread().size() >= 1);
  loop.stop();
}

TEST_CASE("a CPU that does not exist is refused at construction", "[loop][thread-options][bad-input]") {
  const auto present = static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_CONF));
  CHECK_THROWS_AS(BackgroundLoop({.name = "lb-no-cpu", .cpu_affinity = {present}}), InvalidArgument);
  CHECK_THROWS_AS(BackgroundLoop({.name = "lb-no-cpu", .cpu_affinity = {0, 1u << 20}}), InvalidArgument);
}

TEST_CASE("stack_size sets the loop thread's stack", "[loop][thread-options]") {
  // Not a size any default takes (8 MiB with ulimit -s 8192), and above it: glibc hands out
  // a cached stack of up to four times the size asked for, so a smaller size could get the
  // default-sized stack of a thread an earlier test in the same process left behind.
  constexpr std::size_t kStack = 12 * 1024 * 1024;
  BackgroundLoop loop({.name = "lb-stack", .stack_size = kStack});
  loop.start();
  auto size = loop.submit([] {
    pthread_attr_t attributes;
    std::size_t bytes = 0;
    if (::pthread_getattr_np(::pthread_self(), &attributes) == 0) {
      ::pthread_attr_getstacksize(&attributes, &bytes);
      ::pthread_attr_destroy(&attributes);
    }
    return bytes;
  });
  require_settles(size);
  std::size_t bytes = size.get();
  CHECK(bytes >= kStack);
  CHECK(bytes < kStack + 64 * 1024);
  loop.stop();
}

TEST_CASE("absurd stack sizes are refused at construction", "[loop][thread-options][bad-input]") {
  CHECK_THROWS_AS(BackgroundLoop({.name = "lb-tiny-stack", .stack_size = 1}), InvalidArgument);
  CHECK_THROWS_AS(BackgroundLoop({.name = "lb-tiny-stack", .stack_size = 4096}), InvalidArgument);
  CHECK_THROWS_AS(BackgroundLoop({.name = "lb-huge-stack", .stack_size = std::size_t{1} << 40}), InvalidArgument);
  CHECK_THROWS_AS(BackgroundLoop({.name = "lb-huge-stack", .stack_size = SIZE_MAX}), InvalidArgument);
}

TEST_CASE("on_thread_start runs on the named loop thread before the hooks and its setup lasts",
          "[loop][thread-options][hooks]") {
  std::vector<std::string> events;
  BackgroundLoop* current_in_setup = nullptr;
  BackgroundLoop loop({.name = "lb-setup", .on_thread_start = [&] {
                         events.push_back("thread start on " + this_thread_name());
                         current_in_setup = current_loop();
                         // What such a hook is for: say, keep SIGUSR1 off the loop thread.
                         sigset_t blocked;
                         sigemptyset(&blocked);
                         sigaddset(&blocked, SIGUSR1);
                         ::pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
                       }});
  loop.on_start([&]() -> asio::awaitable<void> {
    events.push_back("on_start");
    co_return;
  });
  loop.start();
  CHECK(events == std::vector<std::string>{"thread start on lb-setup", "on_start"});
  CHECK(current_in_setup == &loop);
  auto blocked = loop.submit([] {
    sigset_t mask;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    return sigismember(&mask, SIGUSR1) == 1;
  });
  require_settles(blocked);
  CHECK(blocked.get());
  loop.stop();
}

TEST_CASE("a throwing on_thread_start makes start throw it with no hook run and the thread gone",
          "[loop][thread-options][start]") {
  bool hook_ran = false;
  BackgroundLoop loop({.name = "lb-setup-fail", .on_thread_start = [] { throw SetupFailed("no realtime priority"); }});
  loop.on_start_stop(
      [&]() -> asio::awaitable<void> {
        hook_ran = true;
        co_return;
      },
      [&]() -> asio::awaitable<void> {
        hook_ran = true;
        co_return;
      });
  CHECK_THROWS_AS(loop.start(), SetupFailed);
  CHECK_FALSE(hook_ran);
  CHECK(loop.state() == LoopState::stopped);
  auto names = thread_names();
  CHECK(std::count(names.begin(), names.end(), "lb-setup-fail") == 0);
  auto late = loop.submit([] { return 1; });
  REQUIRE(late.ready());
  CHECK_THROWS_AS(late.get(), LoopStopped);
}

TEST_CASE("on_thread_start waiting on the loop's own work gets DeadlockError", "[loop][thread-options][deadlock]") {
  bool deadlock = false;
  BackgroundLoop* self = nullptr;
  BackgroundLoop loop({.name = "lb-setup-lock", .on_thread_start = [&] {
                         auto task = self->submit([] { return 1; });
                         try {
                           task.wait();
                         } catch (const DeadlockError&) {
                           deadlock = true;
                         }
                       }});
  self = &loop;
  loop.start();
  CHECK(deadlock);
  loop.stop();
}

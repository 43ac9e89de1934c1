// A stop settles every handle: with work pending at destruction, with a host thread
// blocked in get(), with the loop thread blocked past the deadlines, while submissions race it.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"
#include "support/threads.hpp"

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("the destructor with pending work never hangs and settles every handle", "[loop][stop]") {
  std::vector<TaskHandle<void>> handles;
  auto begin = std::chrono::steady_clock::now();
  {
    BackgroundLoop loop({.name = "lb-dtor"});
    loop.start();
    for (int i = 0; i < 100; ++i) handles.push_back(loop.submit([] { return sleep_for(std::chrono::hours(1)); }));
  }
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  for (auto& h : handles) {
    REQUIRE(h.ready());
    CHECK_THROWS_AS(h.get(), TaskCancelled);
  }
}

TEST_CASE("a host thread blocked in get is released by stop", "[loop][stop]") {
  BackgroundLoop loop({.name = "lb-release"});
  loop.start();
  auto sleeper = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
  std::atomic<bool> released{false};
  BlockingCall in_get;
  std::thread waiter([&] {
    in_get.entering();
    try {
      sleeper.get();
    } catch (const TaskCancelled&) {
      released = true;
    }
  });
  // The stop must find the waiter asleep in get(), not on its way there.
  CHECK(in_get.wait_until_asleep());
  loop.stop();
  waiter.join();
  CHECK(released);
}

TEST_CASE("a callable blocking the loop past the deadlines makes stop detach instead of hang", "[loop][stop]") {
  // Shared with the detached thread, which may outlive this test's stack frame.
  auto release = std::make_shared<Gate>();
  auto entered = std::make_shared<std::atomic<bool>>(false);
  {
    BackgroundLoop loop({.name = "lb-blocked"});
    loop.start();
    auto parked = loop.submit([]() -> asio::awaitable<int> {
      co_await sleep_for(std::chrono::hours(1));
      co_return 1;
    });
    REQUIRE(eventually([&] { return loop.stats().running == 1; }));
    loop.post([release, entered] {
      *entered = true;
      release->wait(20s);
    });
    REQUIRE(eventually([&] { return entered->load(); }));
    auto queued = loop.submit([] { return 2; });
    auto begin = std::chrono::steady_clock::now();
    ShutdownReport report = loop.stop({.cancel_timeout = 100ms});
    CHECK(std::chrono::steady_clock::now() - begin < 5s);
    CHECK_FALSE(report.joined);
    // The loop thread cannot act until the callable returns (docs/lifecycle.md); then the
    // detached thread finishes the stop and every handle settles.
    CHECK_FALSE(parked.ready());
    release->open();
    require_settles(parked);
    require_settles(queued);
    CHECK_THROWS_AS(parked.get(), TaskCancelled);
    CHECK_THROWS_AS(queued.get(), TaskCancelled);  // still queued when the stop came: it never runs
  }
  // The detached thread finishes on its own once released.
  CHECK(eventually([] {
    auto names = thread_names();
    return std::count(names.begin(), names.end(), "lb-blocked") == 0;
  }));
}

TEST_CASE("every handle settles when stop races submissions from many threads", "[loop][stop]") {
  for (int round = 0; round < 20; ++round) {
    BackgroundLoop loop({.name = "lb-race"});
    loop.start();
    std::mutex m;
    std::vector<TaskHandle<int>> handles;
    std::vector<std::thread> producers;
    for (int t = 0; t < 3; ++t) {
      producers.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) {
          auto h = (i + t) % 2 ? loop.submit([] { return 1; }) : loop.submit([]() -> asio::awaitable<int> {
            co_await sleep_for(1ms);
            co_return 1;
          });
          std::lock_guard lock(m);
          handles.push_back(std::move(h));
        }
      });
    }
    // Each round the stop lands at another point of the 600 submissions: after none of them,
    // after 30, after 60, and so on, with the producers still going.
    const std::size_t made_before_stop = static_cast<std::size_t>(round) * 30;
    CHECK(eventually([&] {
      std::lock_guard lock(m);
      return handles.size() >= made_before_stop;
    }));
    ShutdownReport report = loop.stop();
    for (auto& p : producers) p.join();
    std::uint64_t ok = 0, stopped = 0, cancelled = 0;
    for (auto& h : handles) {
      REQUIRE(h.ready());
      try {
        ok += static_cast<std::uint64_t>(h.get());
      } catch (const TaskCancelled&) {
        ++cancelled;
      } catch (const LoopStopped&) {
        ++stopped;
      }
    }
    CHECK(ok + stopped + cancelled == 600);
    ShutdownReport final_report = loop.stop();
    CHECK(final_report.completed == report.completed);
    CHECK(ok == report.completed);
  }
}

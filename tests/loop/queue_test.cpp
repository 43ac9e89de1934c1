// The command queue seen from outside: order per submitting thread, depth, fairness to a
// coroutine that keeps yielding.

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("commands from one thread run in the order they were submitted", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-order"});
  loop.start();
  std::vector<int> seen;  // touched only on the loop thread
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < 2000; ++i) {
    if (i % 2 == 0) {
      handles.push_back(loop.submit([&seen, i] { seen.push_back(i); }));
    } else {
      handles.push_back(loop.submit([&seen, i]() -> asio::awaitable<void> {
        seen.push_back(i);
        co_return;
      }));
    }
  }
  auto all = loop.submit([&seen] { return seen.size(); });
  require_settles(all);
  REQUIRE(all.get() == 2000);
  for (int i = 0; i < 2000; ++i) REQUIRE(seen[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("commands from many threads keep each thread's order", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-mpsc"});
  loop.start();
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::vector<int>> seen(kThreads);
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) loop.post([&seen, t, i] { seen[static_cast<std::size_t>(t)].push_back(i); });
    });
  }
  for (auto& p : producers) p.join();
  auto done = loop.submit([] {});
  require_settles(done);
  for (const auto& one : seen) {
    REQUIRE(one.size() == kEach);
    for (int i = 0; i < kEach; ++i) REQUIRE(one[static_cast<std::size_t>(i)] == i);
  }
}

TEST_CASE("the queue depth counts commands the loop has not run yet", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-depth"});
  loop.start();
  LoopBlocker blocker(loop);
  std::vector<TaskHandle<int>> queued;
  for (int i = 0; i < 100; ++i) queued.push_back(loop.submit([i] { return i; }));
  CHECK(loop.queue_depth() == 100);
  blocker.release();
  for (auto& h : queued) require_settles(h);
  CHECK(eventually([&] { return loop.queue_depth() == 0; }));
}

TEST_CASE("a coroutine that keeps yielding does not starve the queue", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-yield"});
  loop.start();
  std::atomic<bool> stop_spinning{false};
  std::atomic<long> spins{0};
  auto spinner = loop.submit([&]() -> asio::awaitable<void> {
    while (!stop_spinning) {
      ++spins;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
  });
  REQUIRE(eventually([&] { return spins.load() > 100; }));
  for (int i = 0; i < 50; ++i) {
    auto next = loop.submit([i] { return i; });
    require_settles(next, 2000ms);
    CHECK(next.get() == i);
  }
  stop_spinning = true;
  require_settles(spinner);
}

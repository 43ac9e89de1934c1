// Races at the very end of a loop's life, found by the stress test under ThreadSanitizer and
// pinned down here.

#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <random>
#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
TEST_CASE("an offloaded function finishing as its loop stops never touches the loop after it shut down",
          "[reliability][stop]") {
  // Stop-aware functions end the moment the stop's cancel reaches them, which is when the
  // stop, with little or no time for unwinding, abandons the tasks waiting on them: the
  // worker that settles a function's result wakes the waiting task's loop while that loop
  // is finishing. More busy threads than cores, so that a worker is preempted in the middle
  // of that wake now and then.
  // ThreadSanitizer sees the race in about one run of three at this size; the other builds
  // can only crash on it, rarely.
  const int rounds = 150;
  constexpr int kTasks = 8;
  std::mt19937 rng(std::random_device{}());
  std::atomic<bool> done{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < 4; ++i) {
    spinners.emplace_back([&] {
      while (!done.load(std::memory_order_relaxed)) {
      }
    });
  }
  for (int round = 0; round < rounds; ++round) {
    BackgroundLoop loop({.name = "lb-late-worker", .worker_threads = kTasks});
    loop.start();
    std::atomic<int> started{0};
    std::vector<TaskHandle<int>> tasks;
    for (int i = 0; i < kTasks; ++i) {
      tasks.push_back(loop.submit([&started]() -> asio::awaitable<int> {
        auto op = to_thread([&started](std::stop_token stop) {
          ++started;
          while (!stop.stop_requested()) {
          }
          return 1;
        });
        co_return co_await std::move(op);
      }));
    }
    REQUIRE(eventually([&] { return started.load() == kTasks; }));
    loop.stop({.cancel_timeout = std::chrono::microseconds(rng() % 20)});
    for (auto& task : tasks) REQUIRE(task.ready());
  }
  done = true;
  for (auto& t : spinners) t.join();
}
#endif

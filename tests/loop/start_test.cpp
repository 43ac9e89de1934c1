#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

struct HookFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

asio::awaitable<void> short_sleep() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 5ms);
  co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace

TEST_CASE("the loop thread carries the configured name", "[loop][start]") {
  BackgroundLoop loop({.name = "lb-named-loop"});
  loop.start();
  // start() need not wait for the thread to run; it names itself as its first step.
  CHECK(eventually([] {
    auto names = thread_names();
    return std::count(names.begin(), names.end(), "lb-named-loop") == 1;
  }));
  auto on_loop = loop.submit([] {
    char name[16] = {};
    ::pthread_getname_np(::pthread_self(), name, sizeof name);
    return std::string(name);
  });
  require_settles(on_loop);
  CHECK(on_loop.get() == "lb-named-loop");
  loop.stop();
  auto names = thread_names();
  CHECK(std::count(names.begin(), names.end(), "lb-named-loop") == 0);
}

TEST_CASE("start without hooks returns at once, and the loop serves and stops from there", "[loop][start]") {
  for (int round = 0; round < 50; ++round) {
    BackgroundLoop loop({.name = "lb-fast-start"});
    loop.start();
    if (round % 2 == 0) {
      auto answer = loop.submit([] { return 42; });  // queued before the thread may have run
      require_settles(answer);
      CHECK(answer.get() == 42);
    }
    const ShutdownReport report = loop.stop();  // at once, for the other rounds
    CHECK(report.joined);
    CHECK(report.completed == (round % 2 == 0 ? 1u : 0u));
  }
}

TEST_CASE("start returns only after the on_start hooks finished in order on the loop thread",
          "[loop][start][hooks]") {
  BackgroundLoop loop({.name = "lb-hooks"});
  std::vector<std::string> events;
  std::atomic<bool> hooks_on_loop_thread{true};
  loop.on_start([&]() -> asio::awaitable<void> {
    co_await short_sleep();
    hooks_on_loop_thread = hooks_on_loop_thread && loop.on_loop_thread();
    events.push_back("start 1");
  });
  loop.on_start([&]() -> asio::awaitable<void> {
    co_await short_sleep();
    events.push_back("start 2");
  });
  loop.start();
  // start() returned, so both hooks have run (and published through the start latch).
  REQUIRE(events == std::vector<std::string>{"start 1", "start 2"});
  CHECK(hooks_on_loop_thread);
  CHECK(loop.state() == LoopState::running);
  loop.stop();
}

TEST_CASE("a throwing on_start hook makes start throw it after undoing the hooks that succeeded",
          "[loop][start][hooks]") {
  std::vector<std::string> events;
  {
    BackgroundLoop loop({.name = "lb-hook-fail"});
    loop.on_start_stop(
        [&]() -> asio::awaitable<void> {
          events.push_back("open a");
          co_return;
        },
        [&]() -> asio::awaitable<void> {
          events.push_back("close a");
          co_return;
        });
    loop.on_start_stop(
        [&]() -> asio::awaitable<void> {
          events.push_back("open b");
          co_await short_sleep();
          throw HookFailed("b cannot open");
        },
        [&]() -> asio::awaitable<void> {
          events.push_back("close b");  // must not run: b never opened
          co_return;
        });
    loop.on_start([&]() -> asio::awaitable<void> {
      events.push_back("open c");  // must not run: b failed first
      co_return;
    });
    REQUIRE_THROWS_AS(loop.start(), HookFailed);
    // The thread is joined before start() throws.
    auto names = thread_names();
    CHECK(std::count(names.begin(), names.end(), "lb-hook-fail") == 0);
    CHECK(loop.state() == LoopState::stopped);
    // A failed start leaves a stopped loop: submissions settle with LoopStopped.
    auto late = loop.submit([] { return 1; });
    REQUIRE(late.ready());
    CHECK_THROWS_AS(late.get(), LoopStopped);
    CHECK_THROWS_AS(loop.start(), InvalidState);
  }
  CHECK(events == std::vector<std::string>{"open a", "open b", "close a"});
}

TEST_CASE("an on_start hook that never finishes makes start throw Timeout", "[loop][start][hooks]") {
  BackgroundLoop loop({.name = "lb-hook-slow", .start_timeout = 100ms});
  loop.on_start([]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await timer.async_wait(asio::use_awaitable);
  });
  auto started_at = std::chrono::steady_clock::now();
  REQUIRE_THROWS_AS(loop.start(), Timeout);
  CHECK(std::chrono::steady_clock::now() - started_at < 5s);
}

TEST_CASE("a loop left idle for seconds still runs the next submission", "[loop][start]") {
  BackgroundLoop loop({.name = "lb-idle"});
  loop.start();
  std::this_thread::sleep_for(2s);
  auto value = loop.submit([]() -> asio::awaitable<int> { co_return 7; });
  require_settles(value);
  CHECK(value.get() == 7);
}

TEST_CASE("current_loop names the loop on its thread and nothing elsewhere", "[loop][start]") {
  BackgroundLoop loop({.name = "lb-current"});
  loop.start();
  CHECK(current_loop() == nullptr);
  auto inside = loop.submit([] { return current_loop(); });
  auto inside_coroutine = loop.submit([]() -> asio::awaitable<BackgroundLoop*> { co_return current_loop(); });
  require_settles(inside);
  require_settles(inside_coroutine);
  CHECK(inside.get() == &loop);
  CHECK(inside_coroutine.get() == &loop);
  // The executor runs plain Asio work on the same thread.
  std::atomic<bool> ran_on_loop{false};
  asio::post(loop.get_executor(), [&] { ran_on_loop = (current_loop() == &loop); });
  CHECK(eventually([&] { return ran_on_loop.load(); }));
}

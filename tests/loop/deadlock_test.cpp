#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

asio::awaitable<int> later(int value, std::chrono::milliseconds delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  co_await timer.async_wait(asio::use_awaitable);
  co_return value;
}

// Plain code a task calls, which does not know it runs on a loop thread.
int legacy_helper(TaskHandle<int>& handle) { return handle.get(); }

}  // namespace

TEST_CASE("blocking on a handle from the loop's own thread throws DeadlockError at once", "[loop][deadlock]") {
  BackgroundLoop loop({.name = "lb-deadlock"});
  loop.start();
  auto inner = loop.submit([] { return later(1, 1ms); });
  auto outer = loop.submit([&] { return legacy_helper(inner); });
  require_settles(outer);
  CHECK_THROWS_AS(outer.get(), DeadlockError);
  auto waits = loop.submit([&] {
    CHECK_THROWS_AS(inner.wait(), DeadlockError);
    CHECK_THROWS_AS(inner.wait_for(1s), DeadlockError);
    return true;
  });
  require_settles(waits);
  CHECK(waits.get());
  require_settles(inner);
  CHECK(inner.get() == 1);
}

TEST_CASE("blocking on another loop's handle from a loop thread throws DeadlockError", "[loop][deadlock]") {
  BackgroundLoop a({.name = "lb-loop-a"});
  BackgroundLoop b({.name = "lb-loop-b"});
  a.start();
  b.start();
  auto on_b = b.submit([] { return later(2, 1ms); });
  auto from_a = a.submit([&] { return on_b.get(); });
  require_settles(from_a);
  CHECK_THROWS_AS(from_a.get(), DeadlockError);
  // stop() that must join is refused on a loop thread too.
  auto stop_b_from_a = a.submit([&] { return b.stop().joined; });
  require_settles(stop_b_from_a);
  CHECK_THROWS_AS(stop_b_from_a.get(), DeadlockError);
  CHECK(b.state() == LoopState::running);
}

TEST_CASE("a coroutine on one loop co_awaits a handle from another loop", "[loop][deadlock][await]") {
  BackgroundLoop a({.name = "lb-await-a"});
  BackgroundLoop b({.name = "lb-await-b"});
  a.start();
  b.start();
  auto on_b = b.submit([] { return later(40, 5ms); });
  auto on_a = a.submit([&]() -> asio::awaitable<int> {
    int from_b = co_await on_b.async_get();
    co_return from_b + (a.on_loop_thread() ? 2 : 0);
  });
  require_settles(on_a);
  CHECK(on_a.get() == 42);
}

TEST_CASE("a coroutine co_awaits a handle of its own loop", "[loop][await]") {
  BackgroundLoop loop({.name = "lb-await-self"});
  loop.start();
  auto outer = loop.submit([&]() -> asio::awaitable<int> {
    auto inner = loop.submit([] { return later(20, 1ms); });
    auto ready_now = loop.submit([] { return 1; });
    int a = co_await inner.async_get();
    int b = co_await ready_now.async_get();
    co_return a + b;
  });
  require_settles(outer);
  CHECK(outer.get() == 21);
}

TEST_CASE("an exception crosses loops through co_await with its type", "[loop][await]") {
  BackgroundLoop a({.name = "lb-exc-a"});
  BackgroundLoop b({.name = "lb-exc-b"});
  a.start();
  b.start();
  auto failing = b.submit([]() -> int { throw std::out_of_range("nope"); });
  auto on_a = a.submit([&]() -> asio::awaitable<bool> {
    try {
      co_await failing.async_get();
    } catch (const std::out_of_range&) {
      co_return true;
    }
    co_return false;
  });
  require_settles(on_a);
  CHECK(on_a.get());
}

TEST_CASE("cancelling a coroutine that awaits another loop's task stops the wait and not the other task",
          "[loop][await][cancel]") {
  BackgroundLoop a({.name = "lb-xcancel-a"});
  BackgroundLoop b({.name = "lb-xcancel-b"});
  a.start();
  b.start();
  auto slow_on_b = b.submit([] { return later(5, 100ms); });
  std::atomic<bool> waiting{false};
  auto on_a = a.submit([&]() -> asio::awaitable<int> {
    waiting = true;
    co_return co_await slow_on_b.async_get();
  });
  REQUIRE(eventually([&] { return waiting.load(); }));
  on_a.cancel();
  require_settles(on_a);
  CHECK_THROWS_AS(on_a.get(), TaskCancelled);
  require_settles(slow_on_b);
  CHECK(slow_on_b.get() == 5);
}

TEST_CASE("stopping a loop whose coroutine awaits another loop's task settles both", "[loop][await][stop]") {
  BackgroundLoop b({.name = "lb-xstop-b"});
  b.start();
  auto forever_on_b = b.submit([] { return later(1, std::chrono::hours(1)); });
  TaskHandle<int> on_a;
  {
    BackgroundLoop a({.name = "lb-xstop-a"});
    a.start();
    on_a = a.submit([&]() -> asio::awaitable<int> { co_return co_await forever_on_b.async_get(); });
    // Started, it runs straight to its co_await: the stop finds it awaiting b's task.
    REQUIRE(eventually([&] { return a.stats().running == 1; }));
  }
  REQUIRE(on_a.ready());
  CHECK_THROWS_AS(on_a.get(), TaskCancelled);
  CHECK_FALSE(forever_on_b.ready());
  b.stop();
  CHECK_THROWS_AS(forever_on_b.get(), TaskCancelled);
}

TEST_CASE("a throwing async_wait completion handler is reported and the loop goes on", "[loop][await][errors]") {
  std::atomic<int> reported{0};
  LoopOptions options{.name = "lb-throw-cb"};
  options.error_handler = [&](std::exception_ptr, std::string_view) { ++reported; };
  BackgroundLoop loop(options);
  loop.start();
  auto target = loop.submit([] { return later(1, 1ms); });
  auto waiter = loop.submit([&] {
    target.async_wait([](boost::system::error_code) { throw std::runtime_error("callback failed"); });
  });
  require_settles(waiter);
  CHECK(eventually([&] { return reported.load() == 1; }));
  auto still = loop.submit([] { return 2; });
  require_settles(still);
  CHECK(still.get() == 2);
}

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <tuple>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

struct GetFailure : std::runtime_error {
  GetFailure() : std::runtime_error("get failure") {}
};

struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  int value;
};

/// A task whose value is ready once `gate` opens, so the waits below really wait.
TaskHandle<int> value_after(BackgroundLoop& loop, Gate& gate, int value) {
  return loop.submit([&gate, value] {
    gate.wait(kDeadline);
    return value;
  });
}

}  // namespace

TEST_CASE("async_get with use_future delivers the value or the exception", "[loop][async_get]") {
  BackgroundLoop loop({.name = "lb-get-future"});
  loop.start();
  auto value = loop.submit([] { return 42; });
  std::future<int> from_value = value.async_get(asio::use_future);
  REQUIRE(from_value.wait_for(kDeadline) == std::future_status::ready);
  CHECK(from_value.get() == 42);
  CHECK_FALSE(value.valid());  // the result was taken

  auto failing = loop.submit([]() -> int { throw GetFailure(); });
  std::future<int> from_failure = failing.async_get(asio::use_future);
  REQUIRE(from_failure.wait_for(kDeadline) == std::future_status::ready);
  CHECK_THROWS_AS(from_failure.get(), GetFailure);
}

TEST_CASE("async_get completes a callback with co_spawn's signature", "[loop][async_get]") {
  BackgroundLoop loop({.name = "lb-get-callback"});
  loop.start();
  Gate gate;
  auto handle = value_after(loop, gate, 7);
  std::promise<std::pair<std::exception_ptr, int>> delivered;
  handle.async_get([&delivered](std::exception_ptr error, int value) { delivered.set_value({error, value}); });
  gate.open();
  auto outcome = delivered.get_future();
  REQUIRE(outcome.wait_for(kDeadline) == std::future_status::ready);
  auto [error, value] = outcome.get();
  CHECK_FALSE(error);
  CHECK(value == 7);
}

TEST_CASE("async_get of a void task completes with the exception alone", "[loop][async_get]") {
  BackgroundLoop loop({.name = "lb-get-void"});
  loop.start();
  auto ok = loop.submit([] {});
  auto failing = loop.submit([] { throw GetFailure(); });
  std::promise<std::exception_ptr> ok_done;
  std::promise<std::exception_ptr> failing_done;
  ok.async_get([&ok_done](std::exception_ptr error) { ok_done.set_value(error); });
  failing.async_get([&failing_done](std::exception_ptr error) { failing_done.set_value(error); });
  auto ok_outcome = ok_done.get_future();
  auto failing_outcome = failing_done.get_future();
  REQUIRE(ok_outcome.wait_for(kDeadline) == std::future_status::ready);
  REQUIRE(failing_outcome.wait_for(kDeadline) == std::future_status::ready);
  CHECK_FALSE(ok_outcome.get());
  CHECK_THROWS_AS(std::rethrow_exception(failing_outcome.get()), GetFailure);
}

TEST_CASE("async_get in a coroutine returns the value with use_awaitable, as_tuple and deferred",
          "[loop][async_get]") {
  BackgroundLoop loop({.name = "lb-get-coro"});
  BackgroundLoop other({.name = "lb-get-other"});
  loop.start();
  other.start();
  Gate gate;
  auto first = value_after(other, gate, 1);
  auto second = other.submit([] { return 2; });
  auto third = other.submit([]() -> int { throw GetFailure(); });
  auto fourth = other.submit([] { return 4; });
  auto sum = loop.submit([&]() -> asio::awaitable<int> {
    int a = co_await first.async_get();
    int b = co_await second.async_get(asio::use_awaitable);
    auto tuple_op = third.async_get(asio::as_tuple(asio::use_awaitable));
    auto [error, c] = co_await std::move(tuple_op);
    auto deferred_op = fourth.async_get(asio::deferred);
    int d = co_await std::move(deferred_op)(asio::use_awaitable);
    co_return a + b + (error ? 10 : 0) + c + d;
  });
  gate.open();
  require_settles(sum);
  CHECK(sum.get() == 1 + 2 + 10 + 0 + 4);
}

TEST_CASE("a cancelled async_get leaves the result in the handle", "[loop][async_get][cancel]") {
  BackgroundLoop loop({.name = "lb-get-cancel"});
  BackgroundLoop other({.name = "lb-get-cancel2"});
  loop.start();
  other.start();
  Gate gate;
  auto slow = value_after(other, gate, 5);
  Gate waiting;
  auto waiter = loop.submit([&]() -> asio::awaitable<int> {
    waiting.open();
    co_return co_await slow.async_get();
  });
  // Cancelled before or after it suspends, the wait ends with an exception either way.
  REQUIRE(waiting.wait(kDeadline));
  waiter.cancel();
  require_settles(waiter);
  CHECK_THROWS(waiter.get());
  gate.open();
  require_settles(slow);
  CHECK(slow.get() == 5);
}

TEST_CASE("co_await async_get works for a type without a default constructor", "[loop][async_get]") {
  BackgroundLoop loop({.name = "lb-get-nodflt"});
  loop.start();
  auto made = loop.submit([] { return NoDefault(42); });
  auto failing = loop.submit([]() -> NoDefault { throw GetFailure(); });
  auto reader = loop.submit([&]() -> asio::awaitable<int> {
    NoDefault value = co_await made.async_get();
    try {
      co_await failing.async_get();
    } catch (const GetFailure&) {
      co_return value.value;
    }
    co_return -1;
  });
  require_settles(reader);
  CHECK(reader.get() == 42);
}

#include <loopbridge/bridge/futures.hpp>

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

asio::awaitable<int> later(int value) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 2ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return value;
}

}  // namespace

TEST_CASE("a handle converts to a std::future with the value or the original exception", "[bridge][futures]") {
  BackgroundLoop loop({.name = "lb-std-future"});
  loop.start();
  std::future<int> value = to_std_future(loop.submit([] { return later(3); }));
  std::future<void> failure = to_std_future(loop.submit([]() -> void { throw std::length_error("too long"); }));
  std::future<std::unique_ptr<int>> owned = to_std_future(loop.submit([] { return std::make_unique<int>(4); }));
  REQUIRE(value.wait_for(kDeadline) == std::future_status::ready);
  CHECK(value.get() == 3);
  REQUIRE(failure.wait_for(kDeadline) == std::future_status::ready);
  CHECK_THROWS_AS(failure.get(), std::length_error);
  REQUIRE(owned.wait_for(kDeadline) == std::future_status::ready);
  CHECK(*owned.get() == 4);
}

TEST_CASE("converted futures settle when the loop stops", "[bridge][futures]") {
  std::future<void> pending;
  {
    BackgroundLoop loop({.name = "lb-future-stop"});
    loop.start();
    pending = to_std_future(loop.submit([]() -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
      co_await timer.async_wait(asio::use_awaitable);
    }));
  }
  REQUIRE(pending.wait_for(0s) == std::future_status::ready);
  CHECK_THROWS_AS(pending.get(), TaskCancelled);
}

TEST_CASE("on_settled runs the callback once with the settled handle", "[bridge][futures]") {
  BackgroundLoop loop({.name = "lb-on-settled"});
  loop.start();
  std::atomic<int> seen{0};
  loop.submit([] { return later(6); }).on_settled([&](TaskHandle<int> settled) { seen = settled.result(); });
  CHECK(eventually([&] { return seen.load() == 6; }));
  auto done = loop.submit([] { return 7; });
  require_settles(done);
  std::move(done).on_settled([&](TaskHandle<int> settled) { seen = settled.result(); });
  CHECK(seen == 7);
}

TEST_CASE("a refused on_settled or future conversion leaves the handle usable", "[bridge][futures]") {
  BackgroundLoop loop({.name = "lb-refused-cb"});
  loop.start();
  std::atomic<bool> release{false};
  auto task = loop.submit([&]() -> asio::awaitable<int> {
    while (!release) co_await later(0);
    co_return 8;
  });
  std::atomic<bool> first_wait_done{false};
  task.async_wait([&](boost::system::error_code) { first_wait_done = true; });
  CHECK_THROWS_AS(std::move(task).on_settled([](TaskHandle<int>) {}), InvalidState);
  REQUIRE(task.valid());
  CHECK_THROWS_AS(to_std_future(std::move(task)), InvalidState);
  REQUIRE(task.valid());
  release = true;
  REQUIRE(eventually([&] { return first_wait_done.load(); }));
  CHECK(task.get() == 8);
}

#include <loopbridge/bridge/boost_future.hpp>

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

// Built where loopbridge::boost_future is (LOOPBRIDGE_BOOST_FUTURE).

namespace {

asio::awaitable<int> boost_later(int value) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 2ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return value;
}

}  // namespace

TEST_CASE("a handle converts to a boost::future whose continuations run", "[bridge][futures]") {
  BackgroundLoop loop({.name = "lb-boost-future"});
  loop.start();
  boost::future<int> value = to_boost_future(loop.submit([] { return boost_later(20); }));
  boost::future<int> doubled = value.then([](boost::future<int> f) { return f.get() * 2; });
  REQUIRE(doubled.wait_for(boost::chrono::seconds(10)) == boost::future_status::ready);
  CHECK(doubled.get() == 40);
  boost::future<void> failure = to_boost_future(loop.submit([]() -> void { throw std::length_error("x"); }));
  REQUIRE(failure.wait_for(boost::chrono::seconds(10)) == boost::future_status::ready);
  CHECK_THROWS_AS(failure.get(), std::length_error);
}

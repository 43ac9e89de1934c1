#include <loopbridge/bridge/default_loop.hpp>

#include <loopbridge/bridge/run.hpp>

#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("the default loop starts on first use and is the same loop every time", "[bridge][default]") {
  reset_default_loop();
  set_default_loop_factory(nullptr);
  LoopHandle first = default_loop();
  LoopHandle second = default_loop();
  CHECK(first == second);
  CHECK(first.state() == LoopState::running);
  CHECK(first.name() == "lb-default");
  CHECK(run(first, [] { return 5; }, 5s) == 5);
  ShutdownReport report = reset_default_loop();
  CHECK(report.joined);
  CHECK(first.state() == LoopState::stopped);
  CHECK_FALSE(default_loop() == first);
  reset_default_loop();
}

TEST_CASE("tests can install their own default loop through the factory", "[bridge][default]") {
  reset_default_loop();
  set_default_loop_factory([] { return std::make_unique<BackgroundLoop>(LoopOptions{.name = "lb-test-dflt"}); });
  CHECK(default_loop().name() == "lb-test-dflt");
  reset_default_loop();
  set_default_loop_factory(nullptr);
  CHECK(default_loop().name() == "lb-default");
  set_default_loop_factory([] { return std::unique_ptr<BackgroundLoop>(); });
  reset_default_loop();
  CHECK_THROWS_AS(default_loop(), InvalidState);
  set_default_loop_factory(nullptr);
}

TEST_CASE("the default loop left running at exit is stopped by the exit hook", "[bridge][default]") {
  // The hook's work is shown by examples/default_loop.cpp exiting cleanly with work pending;
  // here: a pending task on the default loop does not keep the process from ending.
  auto pending = default_loop().submit([]() -> boost::asio::awaitable<void> {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, std::chrono::hours(1));
    co_await timer.async_wait(boost::asio::use_awaitable);
  });
  CHECK_FALSE(pending.ready());
}

// Tests that misbehave on purpose, run one at a time by ctest, which checks that the
// hygiene fixture fails them with a clear message and that they finish.

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/testing/catch2.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>

namespace asio = boost::asio;
using namespace loopbridge;

namespace {

asio::awaitable<void> forever() {
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
  co_await timer.async_wait(asio::use_awaitable);
}

std::unique_ptr<BackgroundLoop> g_leaked;

// A loop shared by every test, made before any of them runs (as a default loop would be).
BackgroundLoop g_shared({.name = "shared"});
const bool g_shared_started = (g_shared.start(), true);

}  // namespace

LOOPBRIDGE_TEST_CASE("forgets to stop its loop", "[.misbehaves]") {
  g_leaked = std::make_unique<BackgroundLoop>(LoopOptions{.name = "forgotten"});
  g_leaked->start();
  g_leaked->post(forever, SubmitOptions{.name = "left-behind"});
}

LOOPBRIDGE_TEST_CASE("would hang on a task that never finishes", "[.misbehaves]") {
  set_deadline(std::chrono::milliseconds(300));
  BackgroundLoop loop({.name = "stuck"});
  loop.start();
  auto never = loop.submit(forever, SubmitOptions{.name = "never-ends"});
  never.get();  // no deadline: without the fixture this test would hang
}

LOOPBRIDGE_TEST_CASE("leaves work in flight on a shared loop", "[.misbehaves]") {
  REQUIRE(g_shared_started);
  g_shared.post(forever, SubmitOptions{.name = "orphan"});
}

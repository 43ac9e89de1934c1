// Asking for a cancel other than by cancel(): cancel_and_wait (and the calls it refuses), and
// a stop token that has already fired.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <limits>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("a cancel_and_wait refused for its arguments or its thread cancels nothing", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-no"});
  loop.start();
  std::atomic<int> aborted{0};
  std::atomic<int> started{0};
  auto task = loop.submit([&] { return sleep_an_hour(&aborted, &started); });
  REQUIRE(eventually([&] { return started.load() == 1; }));
  CHECK_THROWS_AS(task.cancel_and_wait(-1s), InvalidArgument);
  auto from_loop = loop.submit([&] {
    try {
      task.cancel_and_wait(1s);
    } catch (const DeadlockError&) {
      return true;
    }
    return false;
  });
  require_settles(from_loop);
  CHECK(from_loop.get());
  auto from_loop_deadline = loop.submit([&] {
    try {
      task.cancel_and_wait(std::chrono::steady_clock::now() + 1s);
    } catch (const DeadlockError&) {
      return true;
    }
    return false;
  });
  require_settles(from_loop_deadline);
  CHECK(from_loop_deadline.get());
  CHECK(task.wait_for(50ms) == std::future_status::timeout);
  CHECK(aborted == 0);
  CHECK(task.cancel_and_wait(5s) == std::future_status::ready);
  CHECK(aborted == 1);
}

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
TEST_CASE("a submission whose stop token has fired settles cancelled and never runs", "[loop][cancel]") {
  std::stop_source source;
  source.request_stop();
  BackgroundLoop loop({.name = "lb-token-fired"});
  loop.start();
  std::atomic<bool> ran{false};
  auto task = loop.submit([&] { ran = true; }, SubmitOptions{.stop = source.get_token()});
  CHECK(task.ready());
  CHECK_THROWS_AS(task.get(), TaskCancelled);
  CHECK(eventually([&] { return loop.stats().cancelled == 1; }));
  loop.stop();
  // Refused by the stopped loop after the token settled it: settled once, never run.
  auto late = loop.submit([&] { ran = true; }, SubmitOptions{.stop = source.get_token()});
  CHECK_THROWS_AS(late.get(), TaskCancelled);
  CHECK_FALSE(ran);
}
#endif

TEST_CASE("cancel_and_wait with a NaN timeout is refused before cancelling", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-nan"});
  loop.start();
  std::atomic<int> aborted{0};
  auto task = loop.submit([&] { return sleep_an_hour(&aborted); });
  CHECK_THROWS_AS(task.cancel_and_wait(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())),
                  InvalidArgument);
  CHECK_FALSE(task.ready());
  CHECK(task.cancel_and_wait(std::chrono::seconds(5)) == std::future_status::ready);
}

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <loopbridge/loop/detail/coroutines.hpp>

#include <boost/asio/version.hpp>

#include <atomic>
#include <chrono>
#include <string>

using namespace loopbridge;
using namespace loopbridge::test;

// What the configure step announced (cmake/asio.cmake): the Asio release the build uses
// (LOOPBRIDGE_ASIO_INCLUDE_DIR, or the system Boost's) and the way tasks start on it.
TEST_CASE("the build uses the Boost.Asio release its configure step announced", "[loop][asio]") {
  INFO("Asio " << BOOST_ASIO_VERSION / 100000 << "." << BOOST_ASIO_VERSION / 100 % 1000 << "."
               << BOOST_ASIO_VERSION % 100);
  CHECK(BOOST_ASIO_VERSION == LOOPBRIDGE_TEST_ASIO_VERSION);
}

TEST_CASE("tasks start on the path the configure step announced, and a cancel reaches them there", "[loop][asio]") {
  INFO((LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS ? "tasks start through Asio's internals" : "tasks start through co_spawn"));
  CHECK(LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS == LOOPBRIDGE_TEST_TASKS_ON_ASIO_INTERNALS);

  BackgroundLoop loop({.name = "lb-asio-path"});
  loop.start();
  std::atomic<bool> waiting{false};
  auto sleeper = loop.submit([&]() -> boost::asio::awaitable<int> {
    waiting = true;
    co_await sleep_for(std::chrono::hours(1));
    co_return 1;
  });
  auto answer = loop.submit([]() -> boost::asio::awaitable<std::string> { co_return "answer"; });
  require_settles(answer);
  CHECK(answer.get() == "answer");
  REQUIRE(eventually([&] { return waiting.load(); }));
  CHECK(sleeper.cancel());
  require_settles(sleeper);
  CHECK_THROWS_AS(sleeper.get(), TaskCancelled);
  CHECK(loop.stop().cancelled == 1);
}

// What is in flight, listed: the in-flight list of one loop, the tasks a stop abandoned,
// and the loops that are running.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"
#include "support/stats.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("the in-flight list names each task, where it was submitted and its phase", "[loop][in-flight]") {
  BackgroundLoop loop({.name = "dump"});
  loop.start();
  auto a = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); },
                       SubmitOptions{.name = "fetch-user"});
  auto b = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  auto list_handle = loop.in_flight();
  require_settles(list_handle);
  auto list = list_handle.get();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "fetch-user");
  CHECK(list[0].phase == TaskPhase::running);
  CHECK(std::string(list[0].where.file_name()).find("in_flight_test.cpp") != std::string::npos);
  CHECK(list[0].to_string().find("fetch-user (") == 0);
  CHECK(list[1].name.empty());
  CHECK(list[1].to_string().find("(unnamed)") == 0);
  CHECK(list[0].id < list[1].id);
  loop.stop();
  auto after = loop.in_flight();
  require_settles(after);
  CHECK(after.get().empty());
}

TEST_CASE("the shutdown report lists the abandoned tasks", "[loop][in-flight][stop]") {
  BackgroundLoop loop({.name = "abandon"});
  loop.start();
  auto stubborn = loop.submit(
      []() -> asio::awaitable<void> {
        try {
          co_await sleep_for(std::chrono::hours(1));
        } catch (...) {
        }
        co_await asio::this_coro::reset_cancellation_state();
        co_await sleep_for(std::chrono::hours(1));
      },
      SubmitOptions{.name = "ignores-cancel"});
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  auto report = loop.stop(StopOptions{.cancel_timeout = 20ms});
  CHECK(report.abandoned == 1);
  REQUIRE(report.abandoned_tasks.size() == 1);
  CHECK(report.abandoned_tasks[0].name == "ignores-cancel");
  CHECK(report.abandoned_tasks[0].phase == TaskPhase::cancelling);
  REQUIRE_THROWS_AS(stubborn.get(), TaskAbandoned);
  require_reconciled(loop.stats());
}

TEST_CASE("live_loops lists running loops and not stopped ones", "[loop][in-flight][registry]") {
  auto contains = [](const std::vector<LoopHandle>& loops, const LoopHandle& loop) {
    for (const auto& l : loops) {
      if (l == loop) return true;
    }
    return false;
  };
  BackgroundLoop a({.name = "live-a"});
  BackgroundLoop b({.name = "live-b"});
  a.start();
  b.start();
  CHECK(a.id() < b.id());
  CHECK(contains(live_loops(), a));
  CHECK(contains(live_loops(), b));
  a.stop();
  CHECK_FALSE(contains(live_loops(), a));
  CHECK(contains(live_loops(), b));
}

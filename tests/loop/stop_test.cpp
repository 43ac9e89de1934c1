// stop(): how fast it returns, what it settles and reports, its hooks, its deadlines, and
// who may call it.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// Ignores the first cancellation and goes on waiting where the cancel cannot reach it.
asio::awaitable<void> ignores_first_cancel(std::atomic<bool>* frame_destroyed_on_loop, LoopHandle loop) {
  struct Witness {
    std::atomic<bool>* flag;
    LoopHandle loop;
    ~Witness() { *flag = loop.on_loop_thread(); }
  } witness{frame_destroyed_on_loop, loop};
  try {
    co_await sleep_for(std::chrono::hours(1));
  } catch (const boost::system::system_error&) {
  }
  co_await asio::this_coro::reset_cancellation_state();
  co_await sleep_for(std::chrono::hours(1));
}

}  // namespace

TEST_CASE("a task sleeping on a 10000-second timer does not delay stop", "[loop][stop]") {
  BackgroundLoop loop({.name = "lb-stop-fast"});
  loop.start();
  auto sleeper = loop.submit([] { return sleep_for(std::chrono::seconds(10000)); });
  auto begin = std::chrono::steady_clock::now();
  ShutdownReport report = loop.stop();
  CHECK(std::chrono::steady_clock::now() - begin < 1s);
  REQUIRE(sleeper.ready());
  CHECK_THROWS_AS(sleeper.get(), TaskCancelled);
  CHECK(report.joined);
  CHECK(report.cancelled == 1);
  CHECK(report.abandoned == 0);
  CHECK(report.submitted == report.completed + report.failed + report.cancelled + report.abandoned + report.rejected);
}

TEST_CASE("stop is idempotent and callable from many threads at once", "[loop][stop]") {
  BackgroundLoop loop({.name = "lb-stop-many"});
  loop.start();
  auto sleeper = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
  std::vector<std::thread> stoppers;
  std::vector<ShutdownReport> reports(4);
  for (std::size_t i = 0; i < reports.size(); ++i) stoppers.emplace_back([&, i] { reports[i] = loop.stop(); });
  for (auto& t : stoppers) t.join();
  for (const auto& r : reports) {
    CHECK(r.joined);
    CHECK(r.cancelled == 1);
  }
  CHECK(loop.stop().cancelled == 1);
  CHECK(loop.state() == LoopState::stopped);
}

TEST_CASE("submissions after stop settle at once with LoopStopped", "[loop][stop]") {
  BackgroundLoop loop({.name = "lb-after-stop"});
  loop.start();
  LoopHandle handle = loop.handle();
  loop.stop();
  auto late = handle.submit([] { return 1; });
  REQUIRE(late.ready());
  CHECK_THROWS_AS(late.get(), LoopStopped);
  CHECK_THROWS_AS(handle.post([] {}), LoopStopped);
  auto none = handle.cancel_all();
  REQUIRE(none.ready());
  CHECK(none.get() == 0);
  CHECK(loop.stop().rejected == 2);
}

TEST_CASE("a handle may outlive its loop and its submissions settle with LoopStopped", "[loop][stop]") {
  LoopHandle handle;
  {
    BackgroundLoop loop({.name = "lb-outlive"});
    loop.start();
    handle = loop.handle();
  }
  auto late = handle.submit([]() -> asio::awaitable<int> { co_return 1; });
  REQUIRE(late.ready());
  CHECK_THROWS_AS(late.get(), LoopStopped);
}

TEST_CASE("on_stop hooks run on the loop thread in reverse order", "[loop][stop][hooks]") {
  std::vector<std::string> events;
  BackgroundLoop loop({.name = "lb-stop-hooks"});
  bool all_on_loop = true;
  for (int i = 1; i <= 3; ++i) {
    loop.on_stop([&, i]() -> asio::awaitable<void> {
      co_await sleep_for(1ms);
      all_on_loop = all_on_loop && loop.on_loop_thread();
      events.push_back("stop " + std::to_string(i));
    });
  }
  loop.start();
  ShutdownReport report = loop.stop();
  CHECK(events == std::vector<std::string>{"stop 3", "stop 2", "stop 1"});
  CHECK(all_on_loop);
  CHECK(report.hook_errors.empty());
}

TEST_CASE("on_stop hook errors and timeouts land in the shutdown report", "[loop][stop][hooks]") {
  BackgroundLoop loop({.name = "lb-hook-errors"});
  loop.on_stop([]() -> asio::awaitable<void> {
    co_await sleep_for(std::chrono::hours(1));
  });
  loop.on_stop([]() -> asio::awaitable<void> {
    throw std::runtime_error("close failed");
    co_return;
  });
  loop.start();
  ShutdownReport report = loop.stop({.cancel_timeout = 1s, .hook_timeout = 50ms});
  REQUIRE(report.hook_errors.size() == 2);
  CHECK_THROWS_AS(std::rethrow_exception(report.hook_errors[0]), std::runtime_error);
  CHECK_THROWS_AS(std::rethrow_exception(report.hook_errors[1]), Timeout);
}

TEST_CASE("stop drains in-flight tasks for the drain time before cancelling", "[loop][stop]") {
  BackgroundLoop loop({.name = "lb-drain"});
  loop.start();
  auto quick = loop.submit([]() -> asio::awaitable<int> {
    co_await sleep_for(20ms);
    co_return 1;
  });
  auto slow = loop.submit([]() -> asio::awaitable<int> {
    co_await sleep_for(std::chrono::hours(1));
    co_return 2;
  });
  ShutdownReport report = loop.stop({.drain_timeout = 2s});
  CHECK(quick.get() == 1);
  CHECK_THROWS_AS(slow.get(), TaskCancelled);
  CHECK(report.completed == 1);
  CHECK(report.cancelled == 1);
  CHECK(report.duration < 5s);
}

TEST_CASE("stop deadlines of nanoseconds max wait without limit", "[loop][stop]") {
  constexpr auto no_limit = std::chrono::nanoseconds::max();
  // Each deadline alone, beside the others' defaults: their sum must not overflow.
  for (StopOptions options : {StopOptions{.drain_timeout = no_limit}, StopOptions{.cancel_timeout = no_limit},
                              StopOptions{.hook_timeout = no_limit}}) {
    std::atomic<int> errors{0};
    BackgroundLoop loop({.name = "lb-no-limit", .error_handler = [&](std::exception_ptr, std::string_view) { ++errors; }});
    std::atomic<bool> hook_ran{false};
    loop.on_stop([&]() -> asio::awaitable<void> {
      co_await sleep_for(50ms);
      hook_ran = true;
    });
    loop.start();
    auto slow = loop.submit([]() -> asio::awaitable<int> {
      co_await sleep_for(100ms);
      co_return 1;
    });
    ShutdownReport report = loop.stop(options);
    CHECK(report.joined);
    CHECK(hook_ran);
    CHECK(errors == 0);
    CHECK(loop.handle().wait_stopped(no_limit));
    if (options.drain_timeout == no_limit) {
      CHECK(report.completed == 1);
      CHECK(slow.get() == 1);
    } else {
      CHECK_THROWS_AS(slow.get(), TaskCancelled);
    }
  }
}

TEST_CASE("a task that ignores cancellation is abandoned and its frame dies on the loop thread", "[loop][stop]") {
  std::atomic<bool> destroyed_on_loop{false};
  BackgroundLoop loop({.name = "lb-abandon"});
  loop.start();
  LoopHandle handle = loop.handle();
  auto task = loop.submit([&] { return ignores_first_cancel(&destroyed_on_loop, handle); });
  auto normal = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
  REQUIRE(eventually([&] { return loop.queue_depth() == 0; }));
  auto begin = std::chrono::steady_clock::now();
  ShutdownReport report = loop.stop({.cancel_timeout = 100ms});
  CHECK(std::chrono::steady_clock::now() - begin < 3s);
  REQUIRE(task.ready());
  CHECK_THROWS_AS(task.get(), TaskAbandoned);
  CHECK_THROWS_AS(normal.get(), TaskCancelled);
  CHECK(report.abandoned == 1);
  CHECK(report.cancelled == 1);
  CHECK(destroyed_on_loop);
}

TEST_CASE("stop from inside a task requests the stop and returns without joining", "[loop][stop]") {
  BackgroundLoop loop({.name = "lb-self-stop"});
  loop.start();
  auto stopper = loop.submit([&] { return loop.stop().joined; });
  require_settles(stopper);
  CHECK_FALSE(stopper.get());
  CHECK(eventually([&] { return loop.state() == LoopState::stopped; }));
  ShutdownReport report = loop.stop();
  CHECK(report.joined);
}

TEST_CASE("request_stop from another thread stops the loop and the owner's stop joins it", "[loop][stop]") {
  BackgroundLoop loop({.name = "req-stop"});
  loop.start();
  auto parked = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  LoopHandle handle = loop.handle();
  std::thread other([handle] { handle.request_stop(); });
  other.join();
  REQUIRE(loop.wait_stopped(kDeadline));
  REQUIRE_THROWS_AS(parked.get(), TaskCancelled);
  auto report = loop.stop();
  CHECK(report.joined);
  CHECK(report.cancelled == 1);
}

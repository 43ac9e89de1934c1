#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/this_coro.hpp>

#include <functional>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("an empty callable is refused with InvalidArgument", "[loop][errors]") {
  BackgroundLoop loop({.name = "lb-null"});
  loop.start();
  std::function<int()> empty;
  int (*null_function)() = nullptr;
  std::function<asio::awaitable<void>()> empty_coroutine;
  std::function<void()> empty_action;
  CHECK_THROWS_AS(loop.submit(empty), InvalidArgument);
  CHECK_THROWS_AS(loop.submit(null_function), InvalidArgument);
  CHECK_THROWS_AS(loop.submit(empty_coroutine), InvalidArgument);
  CHECK_THROWS_AS(loop.post(empty_action), InvalidArgument);
}

TEST_CASE("negative deadlines are refused with InvalidArgument", "[loop][errors]") {
  CHECK_THROWS_AS(BackgroundLoop({.start_timeout = std::chrono::nanoseconds(0)}), InvalidArgument);
  LoopOptions bad_destructor;
  bad_destructor.destructor_stop.cancel_timeout = -1ms;
  CHECK_THROWS_AS(BackgroundLoop(bad_destructor), InvalidArgument);
  BackgroundLoop loop({.name = "lb-deadlines"});
  loop.start();
  CHECK_THROWS_AS(loop.stop({.drain_timeout = -1ms}), InvalidArgument);
  CHECK_THROWS_AS(loop.stop({.hook_timeout = -1s}), InvalidArgument);
  auto task = loop.submit([] { return 1; });
  CHECK_THROWS_AS(task.wait_for(-1ms), InvalidArgument);
  require_settles(task);
  // Refused per call too, whether or not the queue is full.
  SubmitOptions negative_full_wait;
  negative_full_wait.when_full = QueueFullPolicy::wait;
  negative_full_wait.full_wait = -1s;
  CHECK_THROWS_AS(loop.submit([] { return 1; }, negative_full_wait), InvalidArgument);
  CHECK_THROWS_AS(loop.post([] {}, negative_full_wait), InvalidArgument);
  CHECK(loop.stats().submitted == 1);
  CHECK(loop.state() == LoopState::running);
}

TEST_CASE("lifecycle misuse gets InvalidState", "[loop][errors]") {
  BackgroundLoop loop({.name = "lb-misuse"});
  CHECK_THROWS_AS(loop.submit([] { return 1; }), InvalidState);
  CHECK_THROWS_AS(loop.post([] {}), InvalidState);
  CHECK_THROWS_AS(loop.cancel_all(), InvalidState);
  loop.start();
  CHECK_THROWS_AS(loop.start(), InvalidState);
  CHECK_THROWS_AS(loop.on_start([]() -> asio::awaitable<void> { co_return; }), InvalidState);
  CHECK_THROWS_AS(loop.on_stop([]() -> asio::awaitable<void> { co_return; }), InvalidState);
  loop.stop();
  CHECK_THROWS_AS(loop.start(), InvalidState);
}

TEST_CASE("a loop never started stops cleanly and cannot start afterwards", "[loop][errors]") {
  BackgroundLoop loop({.name = "lb-never"});
  CHECK_FALSE(loop.wait_stopped(0ms));
  ShutdownReport report = loop.stop();
  CHECK(report.submitted == 0);
  CHECK(loop.state() == LoopState::stopped);
  CHECK(loop.wait_stopped(0ms));
  CHECK_THROWS_AS(loop.start(), InvalidState);
}

TEST_CASE("a BackgroundLoop moved into a LoopHandle keeps its loop", "[loop][errors]") {
  BackgroundLoop loop({.name = "lb-sliced"});
  loop.start();
  LoopHandle handle = std::move(loop);
  auto answer = handle.submit([] { return 3; });
  require_settles(answer);
  CHECK(answer.get() == 3);
  std::vector<LoopHandle> kept;
  kept.push_back(std::move(loop));
  CHECK(static_cast<bool>(loop.handle()));
  CHECK(loop.stop().joined);
  CHECK(handle.state() == LoopState::stopped);
}

TEST_CASE("empty hooks are refused with InvalidArgument", "[loop][errors]") {
  BackgroundLoop loop({.name = "lb-empty-hook"});
  CHECK_THROWS_AS(loop.on_start(nullptr), InvalidArgument);
  CHECK_THROWS_AS(loop.on_start_stop([]() -> asio::awaitable<void> { co_return; }, nullptr), InvalidArgument);
}

TEST_CASE("a moved-from or consumed handle throws InvalidHandle", "[loop][errors]") {
  BackgroundLoop loop({.name = "lb-moved"});
  loop.start();
  auto task = loop.submit([] { return 1; });
  auto moved = std::move(task);
  CHECK_FALSE(task.valid());
  CHECK_THROWS_AS(task.get(), InvalidHandle);
  CHECK_THROWS_AS(task.wait(), InvalidHandle);
  CHECK_THROWS_AS(task.cancel(), InvalidHandle);
  CHECK_THROWS_AS(task.ready(), InvalidHandle);
  require_settles(moved);
  CHECK(moved.get() == 1);
  CHECK_THROWS_AS(moved.get(), InvalidHandle);
  TaskHandle<int> never_assigned;
  CHECK_THROWS_AS(never_assigned.wait_for(1ms), InvalidHandle);
  LoopHandle empty;
  CHECK_THROWS_AS(empty.submit([] {}), InvalidHandle);
}

TEST_CASE("every loopbridge error carries a code of loop_category", "[loop][errors]") {
  try {
    throw TaskAbandoned();
  } catch (const LoopStopped& e) {
    CHECK(e.code() == errc::task_abandoned);
    CHECK(e.code().category().name() == std::string("loopbridge"));
  }
  CHECK(std::error_code(errc::deadlock) == make_error_code(errc::deadlock));
}

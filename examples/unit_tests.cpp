// Unit tests that shut down cleanly: a Catch2 test file, as a user of loopbridge writes one.
//
// - Each test makes its own loop, and the loop ends with the test: stop() (or the loop's
//   destructor) cancels what is still pending and joins the thread, so a test whose code
//   under test runs forever still ends.
// - Every test finishes in milliseconds, and checks that it did (TimeBudget).
// - LOOPBRIDGE_TEST_CASE (loopbridge/testing/catch2.hpp) checks each test's hygiene: it fails
//   a test that leaves a loop running past its end, or leaves tasks in flight on a loop it
//   shares with other tests, and prints the tasks still in flight; its watchdog ends a test
//   that would hang. The last test forgets to stop its loop on purpose, to show the failure;
//   Catch2's [!shouldfail] tag turns that expected failure into a pass.

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <loopbridge/loopbridge.hpp>
#include <loopbridge/testing/catch2.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using namespace std::chrono_literals;
namespace asio = boost::asio;

// --- The code under test ------------------------------------------------------------------

/// Sends a heartbeat every `period`, forever: it ends only when cancelled.
class Heartbeat {
public:
  asio::awaitable<void> run(std::chrono::milliseconds period) {
    for (;;) {
      ++beats_;
      asio::steady_timer timer(co_await asio::this_coro::executor, period);
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
  int beats() const { return beats_; }

private:
  std::atomic<int> beats_{0};
};

/// A lookup against a dependency that, today, does not answer.
asio::awaitable<int> lookup_on_a_dead_server() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
  co_await timer.async_wait(asio::use_awaitable);
  co_return 42;
}

// --- Test helpers ---------------------------------------------------------------------------

//! [time-budget]
/// Checks, when it goes out of scope, that the test took less than `limit`. Declared first
/// in a test, it goes out of scope last: the time includes stopping the test's loops.
class TimeBudget {
public:
  explicit TimeBudget(std::chrono::milliseconds limit) : limit_(limit) {}
  ~TimeBudget() {
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_);
    CHECK(took < limit_);
  }

private:
  std::chrono::milliseconds limit_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};
//! [time-budget]

/// Polls `condition` until it holds or one second passes: no wait in a test is unbounded.
template <class Condition>
bool eventually(Condition condition) {
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Generous for sanitizer builds on a busy machine; an unsanitized run takes a few ms.
constexpr auto kBudget = 500ms;

// --- The tests --------------------------------------------------------------------------------

//! [heartbeat-test]
LOOPBRIDGE_TEST_CASE("the heartbeat beats until its loop stops", "[heartbeat]") {
  const TimeBudget budget(kBudget);
  Heartbeat heartbeat;  // declared before the loop: it outlives the task that uses it
  loopbridge::BackgroundLoop loop({.name = "test-heartbeat"});
  loop.start();
  auto beating = loop.submit([&] { return heartbeat.run(1ms); }, loopbridge::SubmitOptions{.name = "heartbeat"});
  REQUIRE(eventually([&] { return heartbeat.beats() >= 3; }));

  loopbridge::ShutdownReport report = loop.stop();  // the heartbeat is still running: cancelled

  CHECK(report.cancelled == 1);
  CHECK(report.joined);
  CHECK_THROWS_AS(beating.get(), loopbridge::TaskCancelled);
  const int beats = heartbeat.beats();
  std::this_thread::sleep_for(5ms);
  CHECK(heartbeat.beats() == beats);  // nothing beats after the stop
}
//! [heartbeat-test]

LOOPBRIDGE_TEST_CASE("work still pending when its loop goes out of scope is cancelled", "[heartbeat]") {
  const TimeBudget budget(kBudget);
  Heartbeat heartbeat;
  loopbridge::TaskHandle<void> beating;
  {
    loopbridge::BackgroundLoop loop({.name = "test-scope"});
    loop.start();
    beating = loop.submit([&] { return heartbeat.run(1ms); });
    REQUIRE(eventually([&] { return heartbeat.beats() >= 1; }));
  }  // no stop(): the destructor cancels the heartbeat and joins the loop thread
  REQUIRE(beating.ready());
  CHECK_THROWS_AS(beating.get(), loopbridge::TaskCancelled);
}

//! [timeout-test]
LOOPBRIDGE_TEST_CASE("a dependency that never answers times out instead of blocking the test", "[lookup]") {
  const TimeBudget budget(kBudget);
  loopbridge::BackgroundLoop loop({.name = "test-lookup"});
  loop.start();

  CHECK_THROWS_AS(loopbridge::run(loop, lookup_on_a_dead_server, 20ms), loopbridge::Timeout);

  CHECK(loop.stats().in_flight == 0);  // run() cancelled the lookup and waited for it to unwind
  CHECK(loop.stop().cancelled == 1);
}
//! [timeout-test]

//! [forgotten]
// The loop of the next test: kept past the end of the test that made it, as a forgotten
// global, a fixture member or a leaked pointer would keep it.
std::unique_ptr<loopbridge::BackgroundLoop> forgotten_loop;

LOOPBRIDGE_TEST_CASE("a test that forgets to stop its loop fails, listing the tasks in flight",
                     "[heartbeat][!shouldfail]") {
  static Heartbeat heartbeat;  // outlives the loop, which the hygiene check stops after the test
  forgotten_loop = std::make_unique<loopbridge::BackgroundLoop>(loopbridge::LoopOptions{.name = "forgotten"});
  forgotten_loop->start();
  forgotten_loop->post([] { return heartbeat.run(1ms); }, loopbridge::SubmitOptions{.name = "heartbeat"});
  // No stop(): at the end of the test, LOOPBRIDGE_TEST_CASE fails it with
  //   loop 'forgotten' created by this test is still running at its end
  //     1 task(s) in flight
  //     - heartbeat (.../unit_tests.cpp:<line>, age ..., running)
  // and stops the loop, so that the next tests and the process go on.
}
//! [forgotten]

// cancel() and cancel_all(): what a cancel does to a task queued, running or finished, and
// the races between a cancel, the submission and the task's start.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("cancel reaches a running coroutine as operation_aborted and get throws TaskCancelled",
          "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel"});
  loop.start();
  std::atomic<int> aborted{0};
  std::atomic<int> started{0};
  auto task = loop.submit([&] { return sleep_an_hour(&aborted, &started); });
  REQUIRE(eventually([&] { return started.load() == 1; }));
  CHECK(task.cancel());
  require_settles(task);
  CHECK_THROWS_AS(task.get(), TaskCancelled);
  CHECK(aborted == 1);
}

TEST_CASE("a cancelled task that swallows the abort still settles as cancelled", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-swallow"});
  loop.start();
  std::atomic<bool> started{false};
  auto task = loop.submit([&]() -> asio::awaitable<int> {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    started = true;
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return ec == asio::error::operation_aborted ? 1 : 2;
  });
  REQUIRE(eventually([&] { return started.load(); }));
  task.cancel();
  require_settles(task);
  CHECK_THROWS_AS(task.get(), TaskCancelled);
}

TEST_CASE("cancelling a finished task does nothing and returns false", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-done"});
  loop.start();
  auto task = loop.submit([] { return 5; });
  require_settles(task);
  CHECK_FALSE(task.cancel());
  CHECK(task.get() == 5);
}

TEST_CASE("cancelling a plain callable that has started returns false and its value stands", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-run"});
  loop.start();
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  auto task = loop.submit([&] {
    started = true;
    return eventually([&] { return release.load(); }) ? 7 : -1;
  });
  REQUIRE(eventually([&] { return started.load(); }));
  CHECK_FALSE(task.cancel());
  CHECK_FALSE(task.cancel());
  release = true;
  require_settles(task);
  CHECK(task.get() == 7);
}

TEST_CASE("a plain callable whose cancel returned true never runs, 1000 races over", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-gate"});
  loop.start();
  int ran = 0, refused = 0;
  for (int i = 0; i < 1000; ++i) {
    std::atomic<bool> did_run{false};
    auto task = loop.submit([&] {
      did_run = true;
      return 1;
    });
    bool cancelled = false;
    std::thread canceller([&] { cancelled = task.cancel(); });
    canceller.join();
    require_settles(task);
    if (cancelled) {
      CHECK_THROWS_AS(task.get(), TaskCancelled);
      CHECK_FALSE(did_run);
      ++refused;
    } else {
      CHECK(task.get() == 1);
      CHECK(did_run);
      ++ran;
    }
  }
  CHECK(ran + refused == 1000);
}

TEST_CASE("a cancel racing the submission loses no future 1000 times over", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-race"});
  loop.start();
  std::atomic<int> aborted{0};
  int values = 0, cancelled = 0;
  for (int i = 0; i < 1000; ++i) {
    TaskHandle<int> task = (i % 2 == 0) ? loop.submit([] { return 1; })
                                        : loop.submit([]() -> asio::awaitable<int> { co_return 1; });
    if (i % 3 == 0) {
      task.cancel();
    } else {
      std::thread canceller([&] { task.cancel(); });
      canceller.join();
    }
    require_settles(task);
    try {
      values += task.get();
    } catch (const TaskCancelled&) {
      ++cancelled;
    }
  }
  CHECK(values + cancelled == 1000);
  auto slow = loop.submit([&] { return sleep_an_hour(&aborted); });
  slow.cancel();
  require_settles(slow);
  CHECK_THROWS_AS(slow.get(), TaskCancelled);
}

TEST_CASE("a task cancelled before it starts never runs", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-early"});
  loop.start();
  LoopBlocker blocker(loop);
  std::atomic<bool> ran{false};
  auto queued = loop.submit([&] { ran = true; });
  CHECK(queued.cancel());
  // Settled at once, as concurrent.futures cancels a pending future, while the loop is busy.
  CHECK(queued.ready());
  CHECK_FALSE(queued.cancel());
  CHECK_THROWS_AS(queued.result(), TaskCancelled);
  blocker.release();
  CHECK(eventually([&] { return loop.stats().cancelled == 1; }));
  CHECK_FALSE(ran);
}

TEST_CASE("a queued task cancelled and then overtaken by a stop counts as cancelled", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-stop"});
  loop.start();
  LoopBlocker blocker(loop);
  std::atomic<bool> ran{false};
  std::shared_ptr<int> capture = std::make_shared<int>(1);
  auto queued = loop.submit([&ran, capture]() -> asio::awaitable<void> {
    ran = true;
    co_return;
  });
  auto refused = loop.submit([] { return 2; });
  CHECK(queued.cancel());
  CHECK(queued.ready());
  CHECK(capture.use_count() == 1);  // the callable went before the handle settled
  loop.request_stop();
  blocker.release();
  ShutdownReport report = loop.stop();
  CHECK(report.cancelled == 2);  // `queued` by its cancel, `refused` by the stop: both never ran
  CHECK(report.completed == 1);  // the blocker
  CHECK(report.submitted == report.completed + report.failed + report.cancelled + report.abandoned + report.rejected);
  CHECK_FALSE(ran);
  CHECK_THROWS_AS(queued.get(), TaskCancelled);
  require_settles(refused);
}

TEST_CASE("cancel_all cancels every in-flight task and settles with their number once they unwound",
          "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-all"});
  loop.start();
  std::atomic<int> aborted{0};
  std::atomic<int> started{0};
  std::vector<TaskHandle<int>> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(loop.submit([&] { return sleep_an_hour(&aborted, &started); }));
  REQUIRE(eventually([&] { return started.load() == 20; }));

  // Host threads blocked in get() are released by cancel_all.
  std::atomic<int> released{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      try {
        tasks[static_cast<std::size_t>(i)].get();
      } catch (const TaskCancelled&) {
        ++released;
      }
    });
  }
  auto count = loop.cancel_all();
  require_settles(count);
  CHECK(count.get() == 20);
  // Settled only once all had unwound: every timer saw the abort.
  CHECK(aborted == 20);
  for (auto& w : waiters) w.join();
  CHECK(released == 4);
  for (std::size_t i = 4; i < tasks.size(); ++i) {
    REQUIRE(tasks[i].ready());
    CHECK_THROWS_AS(tasks[i].get(), TaskCancelled);
  }
  // Later tasks are untouched.
  auto after = loop.submit([] { return 9; });
  require_settles(after);
  CHECK(after.get() == 9);
  auto none = loop.cancel_all();
  require_settles(none);
  CHECK(none.get() == 0);
}

TEST_CASE("a body that cancels itself and returns without suspending ends cleanly", "[loop][cancel]") {
  // With co_spawn, a cancellation emitted after a body's last suspension throws out of
  // io_context::run(). loopbridge's driver has nothing left to run after the body.
  BackgroundLoop loop({.name = "lb-self-cancel"});
  loop.start();
  std::vector<TaskHandle<int>> handles(50);
  {
    LoopBlocker blocker(loop);  // the bodies start only once every handle is stored
    for (std::size_t i = 0; i < handles.size(); ++i) {
      handles[i] = loop.submit([&handles, &loop, i]() -> asio::awaitable<int> {
        handles[i].cancel();
        if (i % 2 == 0) (void)loop.cancel_all();
        co_return static_cast<int>(i);
      });
    }
  }
  for (std::size_t i = 0; i < handles.size(); ++i) {
    require_settles(handles[i]);
    // The cancel reached the task only after it had finished: the value stands.
    CHECK(handles[i].get() == static_cast<int>(i));
  }
  auto still_running = loop.submit([] { return 1; });
  require_settles(still_running);
  CHECK(still_running.get() == 1);
  CHECK(loop.unhandled_errors() == 0);
}

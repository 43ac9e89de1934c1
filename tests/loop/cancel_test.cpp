#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <limits>
#include <thread>
#include <optional>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// Sleeps on a long timer; records how the timer ended.
asio::awaitable<int> sleep_long(std::atomic<int>* aborted_waits, std::atomic<int>* started = nullptr) {
  if (started) ++*started;
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
  try {
    co_await timer.async_wait(asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::operation_aborted) ++*aborted_waits;
    throw;
  }
  co_return 0;
}

}  // namespace

TEST_CASE("cancel reaches a running coroutine as operation_aborted and get throws TaskCancelled",
          "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel"});
  loop.start();
  std::atomic<int> aborted{0};
  std::atomic<int> started{0};
  auto task = loop.submit([&] { return sleep_long(&aborted, &started); });
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
  auto slow = loop.submit([&] { return sleep_long(&aborted); });
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
  for (int i = 0; i < 20; ++i) tasks.push_back(loop.submit([&] { return sleep_long(&aborted, &started); }));
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

TEST_CASE("a cancel that lands as a coroutine resumes after a successful step is not an error") {
  BackgroundLoop loop({.name = "cancel-yield"});
  loop.start();
  auto task = loop.submit([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (;;) co_await asio::post(executor, asio::use_awaitable);
  });
  std::this_thread::sleep_for(10ms);
  task.cancel();
  require_settles(task);
  REQUIRE_THROWS_AS(task.get(), TaskCancelled);
  CHECK(loop.stats().errors_reported == 0);
}

TEST_CASE("a task's executor kept after the task ended still works") {
  BackgroundLoop loop({.name = "exec-outlive"});
  loop.start();
  std::atomic<bool> resumed{false};
  auto spawner = loop.submit([&resumed]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    // A background coroutine that outlives the task that spawned it.
    asio::co_spawn(
        executor,
        [&resumed]() -> asio::awaitable<void> {
          asio::steady_timer timer(co_await asio::this_coro::executor, 30ms);
          co_await timer.async_wait(asio::use_awaitable);
          resumed = true;
        },
        asio::detached);
  });
  require_settles(spawner);
  spawner = {};  // the last handle: only the executor copies keep the task's state now
  REQUIRE(eventually([&] { return resumed.load(); }));
  loop.stop();
}

TEST_CASE("cancelling both branches of an awaitable operator is not an error") {
  BackgroundLoop loop({.name = "cancel-and"});
  loop.start();
  auto task = loop.submit([]() -> asio::awaitable<void> {
    auto both = sleep_for(std::chrono::hours(1)) && sleep_for(std::chrono::hours(1));
    co_await std::move(both);
  });
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  std::this_thread::sleep_for(10ms);
  task.cancel();
  require_settles(task);
  REQUIRE_THROWS_AS(task.get(), TaskCancelled);
  CHECK(loop.stats().errors_reported == 0);
}

TEST_CASE("a cancel_and_wait refused for its arguments or its thread cancels nothing", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-no"});
  loop.start();
  std::atomic<int> aborted{0};
  std::atomic<int> started{0};
  auto task = loop.submit([&] { return sleep_long(&aborted, &started); });
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

TEST_CASE("a stop waits for a cancel that is still destroying its task's callable", "[loop][cancel][stop]") {
  BackgroundLoop loop({.name = "lb-slow-dtor"});
  loop.start();
  std::atomic<bool> in_destructor{false};
  struct SlowToDestroy {
    std::atomic<bool>* flag;
    SlowToDestroy(std::atomic<bool>* f) : flag(f) {}
    SlowToDestroy(SlowToDestroy&& other) noexcept : flag(std::exchange(other.flag, nullptr)) {}
    ~SlowToDestroy() {
      if (!flag) return;
      *flag = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  };
  std::optional<LoopBlocker> blocker(std::in_place, loop);
  auto task = loop.submit([slow = SlowToDestroy(&in_destructor)] { return 1; });
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] { cancelled = task.cancel(); });
  REQUIRE(eventually([&] { return in_destructor.load(); }));
  blocker.reset();  // the loop reaches the task while the cancel is still destroying it
  ShutdownReport report = loop.stop();
  CHECK(task.ready());
  CHECK(report.cancelled == 1);
  canceller.join();
  CHECK(cancelled);
}

TEST_CASE("a capture destroyed by a cancel may submit to its loop and wait", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-dtor-waits"});
  loop.start();
  std::optional<LoopBlocker> blocker(std::in_place, loop);
  struct WaitsForLoop {
    LoopHandle loop;
    std::optional<LoopBlocker>* blocker;
    int* answer;
    WaitsForLoop(LoopHandle l, std::optional<LoopBlocker>* b, int* a) : loop(std::move(l)), blocker(b), answer(a) {}
    WaitsForLoop(WaitsForLoop&& other) noexcept
        : loop(other.loop), blocker(std::exchange(other.blocker, nullptr)), answer(other.answer) {}
    ~WaitsForLoop() {
      if (!blocker) return;
      blocker->reset();  // the loop reaches the cancelled task while this destructor runs
      auto reply = loop.submit([] { return 7; });
      if (reply.wait_for(kDeadline) == std::future_status::ready) *answer = reply.get();
    }
  };
  int answer = 0;
  auto task = loop.submit([capture = WaitsForLoop(loop, &blocker, &answer)] { return 1; });
  CHECK(task.cancel());
  CHECK(answer == 7);
  CHECK_THROWS_AS(task.get(), TaskCancelled);
  ShutdownReport report = loop.stop();
  CHECK(report.cancelled == 1);
  CHECK(report.completed == 2);  // the blocker and the destructor's submission
}

TEST_CASE("cancel_and_wait with a NaN timeout is refused before cancelling", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-nan"});
  loop.start();
  std::atomic<int> aborted{0};
  auto task = loop.submit([&] { return sleep_long(&aborted); });
  CHECK_THROWS_AS(task.cancel_and_wait(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())),
                  InvalidArgument);
  CHECK_FALSE(task.ready());
  CHECK(task.cancel_and_wait(std::chrono::seconds(5)) == std::future_status::ready);
}

TEST_CASE("an error other than operation_aborted thrown while cancelled reaches the error handler",
          "[loop][cancel][errors]") {
  // A connection reset or an I/O error met while unwinding is the task's own error, not the
  // cancellation: it must not be dropped with it.
  std::mutex mutex;
  std::vector<std::string> reported;
  LoopOptions options{.name = "lb-cancel-err"};
  options.error_handler = [&](std::exception_ptr error, std::string_view) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex);
      reported.emplace_back(e.what());
    }
  };
  BackgroundLoop loop(options);
  loop.start();
  const boost::system::error_code errors[] = {asio::error::connection_reset, asio::error::operation_aborted,
                                              make_error_code(boost::system::errc::io_error)};
  for (const auto& thrown : errors) {
    auto task = loop.submit([thrown]() -> asio::awaitable<void> {
      try {
        co_await sleep_for(std::chrono::hours(1));
      } catch (const boost::system::system_error&) {
      }
      throw boost::system::system_error(thrown);  // what the unwinding met
    });
    REQUIRE(eventually([&] { return loop.stats().running == 1; }));
    task.cancel();
    require_settles(task);
    CHECK_THROWS_AS(task.get(), TaskCancelled);
  }
  std::lock_guard lock(mutex);
  REQUIRE(reported.size() == 2);  // operation_aborted is the cancellation itself
  CHECK(reported[0].find(asio::error::make_error_code(asio::error::connection_reset).message()) != std::string::npos);
}

TEST_CASE("a second cancel of a queued task returns once the first has settled it", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-two"});
  loop.start();
  LoopBlocker blocker(loop);
  Gate destroying;
  struct SlowToDestroy {
    Gate* destroying;
    bool armed = true;
    explicit SlowToDestroy(Gate* gate) : destroying(gate) {}
    SlowToDestroy(SlowToDestroy&& other) noexcept : destroying(other.destroying) { other.armed = false; }
    ~SlowToDestroy() {
      if (!armed) return;
      destroying->open();
      std::this_thread::sleep_for(200ms);  // the callable takes its time to go
    }
  };
  auto queued = loop.submit([slow = SlowToDestroy(&destroying)] {});
  std::atomic<bool> first_cancelled{false};
  std::thread first([&] { first_cancelled = queued.cancel(); });
  REQUIRE(destroying.wait());
  CHECK(queued.cancel());  // the first cancel is still destroying the callable
  CHECK(queued.ready());   // and it has settled the task before this one returned
  first.join();
  CHECK(first_cancelled);
  CHECK_THROWS_AS(queued.get(), TaskCancelled);
}

TEST_CASE("a capture whose destructor cancels its own task does not wait for itself", "[loop][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-self"});
  loop.start();
  LoopBlocker blocker(loop);
  TaskHandle<void> queued;
  struct CancelsItsTask {
    TaskHandle<void>* task;
    bool armed = true;
    explicit CancelsItsTask(TaskHandle<void>* t) : task(t) {}
    CancelsItsTask(CancelsItsTask&& other) noexcept : task(other.task) { other.armed = false; }
    ~CancelsItsTask() {
      if (armed) CHECK(task->cancel());  // inside the cancel that destroys it: returns at once
    }
  };
  queued = loop.submit([capture = CancelsItsTask(&queued)] {});
  CHECK(queued.cancel());
  CHECK(queued.ready());
  CHECK_THROWS_AS(queued.get(), TaskCancelled);
}

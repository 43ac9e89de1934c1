#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

asio::awaitable<int> sleep_then(std::chrono::milliseconds d, int value, std::atomic<bool>* unwound = nullptr) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  try {
    co_await timer.async_wait(asio::use_awaitable);
  } catch (...) {
    if (unwound) *unwound = true;
    throw;
  }
  co_return value;
}

}  // namespace

TEST_CASE("run returns the value of a call that finishes in time", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run"});
  loop.start();
  CHECK(run(loop, [] { return sleep_then(1ms, 7); }, 5s) == 7);
  CHECK(run(loop, [] { return 8; }, std::chrono::steady_clock::now() + 5s) == 8);
  CHECK_THROWS_AS(run(loop, []() -> int { throw std::domain_error("x"); }, 5s), std::domain_error);
}

TEST_CASE("run past its deadline cancels the task and waits for it to unwind before throwing Timeout", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run-late"});
  loop.start();
  std::atomic<bool> unwound{false};
  auto begin = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(run(loop, [&] { return sleep_then(std::chrono::hours(1), 1, &unwound); }, 50ms), Timeout);
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  // Nothing is left running: the task unwound before run() threw.
  CHECK(unwound);
  auto count = loop.cancel_all();
  require_settles(count);
  CHECK(count.get() == 0);
}

TEST_CASE("a timed wait on a handle never cancels anything", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-wait-only"});
  loop.start();
  auto task = loop.submit([] { return sleep_then(50ms, 3); });
  CHECK(task.wait_for(1ms) == std::future_status::timeout);
  require_settles(task);
  CHECK(task.get() == 3);
}

TEST_CASE("run inside a host catch block does not rethrow the host's exception", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run-catch"});
  loop.start();
  int value = 0;
  try {
    throw std::runtime_error("host failure being handled");
  } catch (const std::runtime_error&) {
    value = run(loop, [] { return sleep_then(1ms, 9); }, 5s);
    CHECK_THROWS_AS(run(loop, [] { return sleep_then(std::chrono::hours(1), 1); }, 10ms), Timeout);
  }
  CHECK(value == 9);
}

TEST_CASE("run on a loop that is not running fails at once", "[bridge][run]") {
  BackgroundLoop never_started({.name = "lb-run-idle"});
  CHECK_THROWS_AS(run(never_started, [] { return 1; }, 5s), InvalidState);
  BackgroundLoop stopped({.name = "lb-run-stopped"});
  stopped.start();
  stopped.stop();
  auto begin = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(run(stopped, [] { return 1; }, 5s), LoopStopped);
  CHECK(std::chrono::steady_clock::now() - begin < 1s);
  CHECK_THROWS_AS(run(stopped, [] { return 1; }, 0ms), InvalidArgument);
}

TEST_CASE("a wait cycle across loops is reported with DeadlockError instead of hanging", "[bridge][run][deadlock]") {
  BackgroundLoop a({.name = "lb-cycle-a"});
  BackgroundLoop b({.name = "lb-cycle-b"});
  a.start();
  b.start();
  // A task on a blocks on b, whose task would block on a.
  auto on_a = a.submit([&] {
    return run(b, [&] { return run(a, [] { return 1; }, 5s); }, 5s);
  });
  require_settles(on_a);
  CHECK_THROWS_AS(on_a.get(), DeadlockError);
}

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
TEST_CASE("a stop token cancels the task it was submitted with", "[bridge][run][cancel]") {
  BackgroundLoop loop({.name = "lb-stop-token"});
  loop.start();
  std::stop_source source;
  auto task = loop.submit([] { return sleep_then(std::chrono::hours(1), 1); }, source.get_token());
  CHECK(task.wait_for(10ms) == std::future_status::timeout);
  source.request_stop();
  require_settles(task);
  CHECK_THROWS_AS(task.get(), TaskCancelled);

  // From a std::jthread: stopping the thread cancels its blocking run().
  std::atomic<bool> cancelled{false};
  std::atomic<bool> run_task_started{false};
  {
    std::jthread worker([&](std::stop_token stop) {
      try {
        run(
            loop,
            [&] {
              run_task_started = true;
              return sleep_then(std::chrono::hours(1), 1);
            },
            30s, {.stop = stop});
      } catch (const TaskCancelled&) {
        cancelled = true;
      }
    });
    // The stop request finds run()'s task running, not yet to be submitted.
    CHECK(eventually([&] { return run_task_started.load(); }));
  }  // ~jthread requests stop, then joins
  CHECK(cancelled);

  // A token already stopped: the task never runs.
  std::atomic<bool> ran{false};
  auto never = loop.submit([&] { ran = true; }, source.get_token());
  require_settles(never);
  CHECK_THROWS_AS(never.get(), TaskCancelled);
  CHECK_FALSE(ran);
}
#endif

TEST_CASE("cancel_and_wait returns once the task has unwound or reports the deadline", "[bridge][run][cancel]") {
  BackgroundLoop loop({.name = "lb-cancel-wait"});
  loop.start();
  std::atomic<bool> unwound{false};
  std::atomic<bool> started{false};
  auto task = loop.submit([&]() -> asio::awaitable<int> {
    started = true;
    co_return co_await sleep_then(std::chrono::hours(1), 1, &unwound);
  });
  REQUIRE(eventually([&] { return started.load(); }));
  CHECK(task.cancel_and_wait(5s) == std::future_status::ready);
  CHECK(unwound);
  CHECK_THROWS_AS(task.get(), TaskCancelled);

  // A task that ignores the cancel past the deadline: reported, not hung.
  std::atomic<bool> stubborn_started{false};
  auto stubborn = loop.submit([&stubborn_started]() -> asio::awaitable<void> {
    stubborn_started = true;
    try {
      co_await sleep_then(std::chrono::hours(1), 1);
    } catch (...) {
    }
    co_await asio::this_coro::reset_cancellation_state();
    co_await sleep_then(200ms, 1);
  });
  // The cancel must find it waiting, to be ignored: a task cancelled before it starts settles at once.
  REQUIRE(eventually([&] { return stubborn_started.load(); }));
  CHECK(stubborn.cancel_and_wait(std::chrono::steady_clock::now() + 20ms) == std::future_status::timeout);
  require_settles(stubborn);
}

TEST_CASE("run with a timeout too large for nanoseconds waits without limit", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run-huge"});
  loop.start();
  CHECK(run(loop, [] { return sleep_then(20ms, 1); }, std::chrono::seconds::max()) == 1);
  CHECK(run(loop, [] { return sleep_then(20ms, 2); }, std::chrono::hours::max()) == 2);
  CHECK(run(loop, [] { return sleep_then(20ms, 3); }, std::chrono::nanoseconds::max()) == 3);
}

TEST_CASE("floating-point timeouts: NaN is refused and a huge one waits without limit", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run-float"});
  loop.start();
  const std::chrono::duration<double> nan(std::numeric_limits<double>::quiet_NaN());
  CHECK_THROWS_AS(run(loop, [] { return 1; }, nan), InvalidArgument);
  auto task = loop.submit([] { return sleep_then(20ms, 4); });
  CHECK_THROWS_AS(task.wait_for(nan), InvalidArgument);
  CHECK(task.wait_for(std::chrono::duration<double, std::pico>(1e30)) == std::future_status::ready);
  CHECK(task.get() == 4);
  CHECK(run(loop, [] { return sleep_then(20ms, 5); }, std::chrono::duration<double>(1e300)) == 5);
  CHECK(run(loop, [] { return 6; }, std::chrono::duration<double, std::milli>(50.5)) == 6);
}

TEST_CASE("a deadline of time_point min() only polls and throws Timeout", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run-min"});
  loop.start();
  const auto begin = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(run(loop, [] { return sleep_then(std::chrono::hours(1), 1); },
                      std::chrono::steady_clock::time_point::min()),
                  Timeout);
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  auto task = loop.submit([] { return sleep_then(std::chrono::hours(1), 1); });
  CHECK(task.wait_until(std::chrono::steady_clock::time_point::min()) == std::future_status::timeout);
  CHECK(task.wait_until(std::chrono::system_clock::time_point::min()) == std::future_status::timeout);
  CHECK(task.wait_until(std::chrono::time_point<std::chrono::steady_clock, std::chrono::hours>::min()) ==
        std::future_status::timeout);
  CHECK(task.cancel());
  require_settles(task);
}

TEST_CASE("run returns the value of a running callable that a cancel could not stop", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run-busy"});
  loop.start();
  std::atomic<bool> ran{false};
  CHECK(run(loop,
            [&] {
              // The behaviour under test, not a sync point: the callable outlasts run()'s deadline.
              std::this_thread::sleep_for(200ms);
              ran = true;
              return 42;
            },
            20ms) == 42);
  CHECK(ran);
  CHECK(loop.stats().completed == 1);
  CHECK(loop.stats().cancelled == 0);
}

TEST_CASE("run gives a running callable no more than the unwind timeout past its deadline", "[bridge][run]") {
  BackgroundLoop loop({.name = "lb-run-stuck"});
  loop.start();
  std::atomic<bool> release{false};
  const auto begin = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(run(
                      loop, [&] { return eventually([&] { return release.load(); }) ? 1 : -1; }, 20ms,
                      RunOptions{.unwind_timeout = 50ms}),
                  Timeout);
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  release = true;
}

TEST_CASE("a thread_local destructor that outlives the thread's loopbridge state may still call run",
          "[bridge][run][exit]") {
  // Destroyed after loopbridge's own per-thread state (constructed before it), as an
  // exit-time flush would be.
  struct FlushAtThreadExit {
    BackgroundLoop* loop = nullptr;
    std::atomic<int>* result = nullptr;
    ~FlushAtThreadExit() {
      if (loop) *result = run(*loop, [] { return 7; }, 5s) + loop->submit([] { return 1; }).get();
    }
  };
  BackgroundLoop loop({.name = "lb-run-tlexit"});
  loop.start();
  std::atomic<int> result{0};
  std::thread([&] {
    thread_local FlushAtThreadExit flush;
    flush.loop = &loop;
    flush.result = &result;
    CHECK(run(loop, [] { return 1; }, 5s) == 1);
  }).join();
  CHECK(result == 8);
}

TEST_CASE("run waits for a task that ignores its cancellation and reports it once", "[bridge][run][cancel]") {
  std::atomic<int> warnings{0};
  LoopOptions options{.name = "lb-run-stubborn"};
  options.error_handler = [&](std::exception_ptr error, std::string_view) {
    try {
      std::rethrow_exception(error);
    } catch (const Timeout&) {
      ++warnings;
    } catch (...) {
    }
  };
  BackgroundLoop loop(options);
  loop.start();
  // The caller's local, used by reference until the very end of the slow legacy call.
  std::string written_by_the_call;
  std::atomic<bool> call_returned{false};
  // A legacy call that cannot be stopped: it returns only once run() has warned that it waits.
  auto release = std::make_shared<Gate>();
  std::thread releaser([&warnings, release] {
    eventually([&] { return warnings.load() == 1; });
    release->open();
  });
  CHECK_THROWS_AS(loopbridge::run(
                      loop,
                      [&]() -> asio::awaitable<void> {
                        auto slow = to_thread([&, release] {
                          release->wait();
                          written_by_the_call = "done";
                          call_returned = true;
                        });
                        co_await std::move(slow);
                      },
                      20ms, {.unwind_warning = 100ms, .name = "stubborn"}),
                  Timeout);
  CHECK(call_returned);  // run returned only once the call had
  releaser.join();
  CHECK(written_by_the_call == "done");
  CHECK(warnings == 1);
}

TEST_CASE("run waits for what the stop left of its task before it rethrows the stop's error", "[bridge][run][stop]") {
  BackgroundLoop loop({.name = "lb-run-stopped"});
  loop.start();
  Gate entered;
  auto release = std::make_shared<Gate>();
  std::atomic<bool> call_returned{false};
  std::atomic<bool> run_saw_it{false};
  std::atomic<bool> run_returned{false};
  std::thread caller([&] {
    std::string written_by_the_call;  // used by reference by the worker, after the stop
    try {
      loopbridge::run(
          loop,
          [&]() -> asio::awaitable<void> {
            auto slow = to_thread([&, release] {
              entered.open();
              release->wait();  // past the stop: opened once the stop has returned
              written_by_the_call = "done";
              call_returned = true;
            });
            co_await std::move(slow);
          },
          10s);
    } catch (const TaskAbandoned&) {
      run_saw_it = call_returned.load();
    }
    run_returned = true;
  });
  REQUIRE(entered.wait());
  // The task waits for its function, which ignores the cancel: abandoned at the deadline.
  ShutdownReport report = loop.stop({.cancel_timeout = 50ms});
  CHECK_FALSE(run_returned.load());  // the function has not returned: neither has run()
  release->open();
  caller.join();
  CHECK(report.abandoned == 1);
  CHECK(run_saw_it);
}

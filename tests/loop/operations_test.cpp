// Metrics, stall detection, the error handler, backpressure and the in-flight list.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

void require_reconciled(const LoopStats& s) {
  INFO("submitted " << s.submitted << " completed " << s.completed << " failed " << s.failed << " cancelled "
                    << s.cancelled << " rejected " << s.rejected << " abandoned " << s.abandoned << " in flight "
                    << s.in_flight);
  REQUIRE(s.submitted == s.completed + s.failed + s.cancelled + s.rejected + s.abandoned + s.in_flight);
}

struct StallLog {
  std::mutex mutex;
  std::vector<StallReport> reports;
  StallHandler handler() {
    return [this](const StallReport& r) {
      std::lock_guard lock(mutex);
      reports.push_back(r);
    };
  }
  std::vector<StallReport> get() {
    std::lock_guard lock(mutex);
    return reports;
  }
};

}  // namespace

TEST_CASE("stats count every outcome and reconcile while idle and after stop") {
  BackgroundLoop loop({.name = "stats"});
  loop.start();
  require_reconciled(loop.stats());

  auto ok = loop.submit([] { return 1; });
  auto fails = loop.submit([]() -> int { throw std::runtime_error("boom"); });
  auto parked = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  auto cancelled = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
  require_settles(ok);
  require_settles(fails);
  cancelled.cancel();
  require_settles(cancelled);
  // The loop counts a task cancelled before it started once it takes it from the queue.
  REQUIRE(eventually([&] {
    LoopStats now = loop.stats();
    return now.running == 1 && now.queued == 0;
  }));

  LoopStats s = loop.stats();
  CHECK(s.submitted == 4);
  CHECK(s.completed == 1);
  CHECK(s.failed == 1);
  CHECK(s.cancelled == 1);
  CHECK(s.in_flight == 1);
  CHECK(s.queued == 0);
  CHECK(s.uptime > std::chrono::nanoseconds::zero());
  require_reconciled(s);

  loop.stop();
  auto late = loop.submit([] { return 2; });
  REQUIRE_THROWS_AS(late.get(), LoopStopped);
  REQUIRE_THROWS_AS(loop.post([] {}), LoopStopped);
  s = loop.stats();
  CHECK(s.cancelled == 2);  // the parked task, at stop
  CHECK(s.rejected == 2);
  CHECK(s.in_flight == 0);
  CHECK(s.submitted == 6);
  require_reconciled(s);
  REQUIRE_THROWS_AS(parked.get(), TaskCancelled);
}

TEST_CASE("queued submissions show in stats and their submit-to-start lag is measured") {
  BackgroundLoop loop({.name = "lag", .stall_threshold = std::chrono::nanoseconds::zero()});
  loop.start();
  std::vector<TaskHandle<void>> handles;
  {
    LoopBlocker blocker(loop);
    for (int i = 0; i < 10; ++i) handles.push_back(loop.submit([] {}));
    LoopStats s = loop.stats();
    CHECK(s.queued == 10);
    CHECK(s.in_flight == 11);  // the blocker runs
    CHECK(s.queue_depth >= 10);
    require_reconciled(s);
    std::this_thread::sleep_for(30ms);
  }
  for (auto& h : handles) require_settles(h);
  LoopStats s = loop.stats();
  CHECK(s.lag_max >= 30ms);
  CHECK(s.lag_p99 >= 25ms);  // 10 of the 11 waited behind the blocker
  CHECK(s.lag_p50 > std::chrono::nanoseconds::zero());
  CHECK(s.longest_handler >= 30ms);
  CHECK(s.stalls == 0);  // stall detection is off here
}

TEST_CASE("a callable that blocks the loop thread is reported with its name and duration") {
  StallLog log;
  BackgroundLoop loop({.name = "stall", .stall_threshold = 20ms, .stall_handler = log.handler()});
  loop.start();
  auto slow = loop.submit([] { std::this_thread::sleep_for(40ms); }, SubmitOptions{.name = "slow-callable"});
  auto quick = loop.submit([] {}, SubmitOptions{.name = "quick"});
  require_settles(slow);
  require_settles(quick);
  loop.post([] { std::this_thread::sleep_for(30ms); }, SubmitOptions{.name = "slow-post"});
  REQUIRE(eventually([&] { return log.get().size() == 2; }));
  auto reports = log.get();
  CHECK(reports[0].task == "slow-callable");
  CHECK(reports[0].loop == "stall");
  CHECK(reports[0].duration >= 40ms);
  CHECK(std::string(reports[0].where.file_name()).find("operations_test.cpp") != std::string::npos);
  CHECK(reports[1].task == "slow-post");
  CHECK(loop.stats().stalls == 2);
}

namespace {

/// Sleeps in its destructor: user code that runs after a command's own work.
struct SlowToDestroy {
  std::chrono::milliseconds pause;
  ~SlowToDestroy() { std::this_thread::sleep_for(pause); }
};

}  // namespace

TEST_CASE("time spent after a command in a stall handler or a destructor is charged to no other command") {
  // Commands drained in one batch are timed from one to the next: whatever runs after a
  // command's scope must not be counted as the next command's time.
  StallLog log;
  BackgroundLoop loop({.name = "stall-chain",
                       .stall_threshold = 20ms,
                       .stall_handler = [&log](const StallReport& report) {
                         log.handler()(report);
                         std::this_thread::sleep_for(30ms);  // a slow handler
                       }});
  loop.start();
  std::atomic<int> quick_ran{0};
  {
    LoopBlocker blocker(loop);  // everything below waits in one batch behind it
    loop.post([] { std::this_thread::sleep_for(30ms); }, SubmitOptions{.name = "slow"});
    loop.post([&quick_ran] { ++quick_ran; }, SubmitOptions{.name = "quick-after-stall"});
    auto pause = std::make_shared<SlowToDestroy>(SlowToDestroy{30ms});
    loop.post([pause = std::move(pause)] {}, SubmitOptions{.name = "slow-captures"});
    loop.post([&quick_ran] { ++quick_ran; }, SubmitOptions{.name = "quick-after-captures"});
    {
      // Dropped before it runs: the loop destroys its result, after the task's own scope.
      auto dropped = loop.submit([] { return std::make_unique<SlowToDestroy>(SlowToDestroy{30ms}); },
                                 SubmitOptions{.name = "dropped"});
    }
    loop.post([&quick_ran] { ++quick_ran; }, SubmitOptions{.name = "quick-after-dropped"});
  }
  REQUIRE(eventually([&] { return quick_ran.load() == 3; }));
  loop.stop();
  std::vector<std::string> reported;
  for (const StallReport& report : log.get()) reported.push_back(report.task);
  CAPTURE(reported);
  CHECK(std::count(reported.begin(), reported.end(), "slow") == 1);
  CHECK(std::count(reported.begin(), reported.end(), "slow-captures") == 1);  // its captures are its time
  for (const std::string& name : reported) CHECK(name.rfind("quick", 0) != 0);
}

TEST_CASE("a coroutine that blocks after a suspension is reported under its own name") {
  StallLog log;
  BackgroundLoop loop({.name = "stall-co", .stall_threshold = 20ms, .stall_handler = log.handler()});
  loop.start();
  auto waiting = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); },
                             SubmitOptions{.name = "bystander"});
  auto blocking = loop.submit(
      []() -> asio::awaitable<int> {
        co_await sleep_for(5ms);
        std::this_thread::sleep_for(40ms);  // a synchronous call inside a coroutine
        co_await sleep_for(1ms);
        co_return 7;
      },
      SubmitOptions{.name = "blocking-coro"});
  require_settles(blocking);
  CHECK(blocking.get() == 7);
  auto reports = log.get();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].task == "blocking-coro");
  CHECK(reports[0].duration >= 40ms);
  CHECK(reports[0].duration < 1s);
  waiting.cancel();
  require_settles(waiting);
}

TEST_CASE("stall detection can be turned off and a throwing stall handler is contained") {
  std::atomic<int> errors{0};
  BackgroundLoop loop({.name = "stall-throw",
                       .error_handler = [&](std::exception_ptr, std::string_view) { ++errors; },
                       .stall_threshold = 10ms,
                       .stall_handler = [](const StallReport&) { throw std::runtime_error("handler bug"); }});
  loop.start();
  auto slow = loop.submit([] { std::this_thread::sleep_for(20ms); });
  require_settles(slow);
  REQUIRE(eventually([&] { return errors.load() == 1; }));
  auto after = loop.submit([] { return 3; });
  require_settles(after);
  CHECK(after.get() == 3);
}

TEST_CASE("the error handler receives fire-and-forget errors and hook errors at destruction") {
  std::mutex mutex;
  std::vector<std::string> contexts;
  ErrorHandler handler = [&](std::exception_ptr error, std::string_view context) {
    std::lock_guard lock(mutex);
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      contexts.push_back(std::string(context) + ": " + e.what());
    }
  };
  std::uint64_t errors_reported = 0;
  {
    BackgroundLoop loop({.name = "errors", .error_handler = handler});
    loop.on_stop([]() -> asio::awaitable<void> {
      throw std::runtime_error("stop hook failed");
      co_return;
    });
    loop.start();
    loop.post([] { throw std::runtime_error("posted failure"); });
    loop.post([]() -> asio::awaitable<void> {
      co_await sleep_for(1ms);
      throw std::runtime_error("posted coroutine failure");
    });
    REQUIRE(eventually([&] { return loop.stats().errors_reported == 2; }));
    CHECK(loop.stats().failed == 2);
    errors_reported = loop.stats().errors_reported;
  }  // the destructor stops the loop: nobody gets its report
  std::lock_guard lock(mutex);
  REQUIRE(contexts.size() == 3);
  CHECK(errors_reported == 2);
  CHECK(contexts[0].find("posted failure") != std::string::npos);
  CHECK(contexts[1].find("posted coroutine failure") != std::string::npos);
  CHECK(contexts[2].find("stop hook failed") != std::string::npos);
  CHECK(contexts[2].find("destructor") != std::string::npos);
}

TEST_CASE("the process-wide error handler serves loops without their own and can be restored") {
  std::atomic<int> seen{0};
  ErrorHandler previous = set_error_handler([&](std::exception_ptr, std::string_view) { ++seen; });
  {
    BackgroundLoop loop({.name = "global-err"});
    loop.start();
    loop.post([] { throw std::runtime_error("to the process handler"); });
    REQUIRE(eventually([&] { return seen.load() == 1; }));
  }
  set_error_handler(std::move(previous));
  CHECK(seen.load() == 1);
}

TEST_CASE("a full queue refuses submissions at once with QueueFull and nothing is lost") {
  BackgroundLoop loop({.name = "full", .queue_capacity = 4, .stall_threshold = std::chrono::nanoseconds::zero()});
  loop.start();
  std::vector<TaskHandle<int>> accepted;
  {
    LoopBlocker blocker(loop);
    for (int i = 0; i < 4; ++i) accepted.push_back(loop.submit([i] { return i; }));
    REQUIRE_THROWS_AS(loop.submit([] { return 99; }), QueueFull);
    REQUIRE_THROWS_AS(loop.post([] {}), QueueFull);
    try {
      (void)loop.submit([] { return 99; });
    } catch (const Error& e) {
      CHECK(e.code() == errc::queue_full);
    }
    // Cancels are never refused, even with the queue full.
    accepted[3].cancel();
    LoopStats s = loop.stats();
    CHECK(s.rejected_full == 3);
    CHECK(s.queued == 4);
  }
  for (int i = 0; i < 3; ++i) CHECK(accepted[static_cast<std::size_t>(i)].get() == i);
  REQUIRE_THROWS_AS(accepted[3].get(), TaskCancelled);
  auto after = loop.submit([] { return 5; });
  CHECK(after.get() == 5);
  require_reconciled(loop.stats());
}

TEST_CASE("a waiting submission gets in when room appears and fails at its deadline otherwise") {
  BackgroundLoop loop({.name = "full-wait",
                       .queue_capacity = 1,
                       .when_full = QueueFullPolicy::wait,
                       .full_wait = 5s,
                       .stall_threshold = std::chrono::nanoseconds::zero()});
  loop.start();
  auto blocker = std::make_unique<LoopBlocker>(loop);
  auto first = loop.submit([] { return 1; });

  auto started = std::chrono::steady_clock::now();
  SubmitOptions short_wait{.full_wait = 30ms};
  REQUIRE_THROWS_AS(loop.submit([] { return 2; }, short_wait), QueueFull);
  CHECK(std::chrono::steady_clock::now() - started >= 30ms);
  REQUIRE_THROWS_AS(loop.submit([] { return 2; }, SubmitOptions{.when_full = QueueFullPolicy::fail}), QueueFull);

  std::atomic<bool> second_admitted{false};
  std::thread producer([&] {
    auto second = loop.submit([] { return 2; });
    second_admitted = true;
    CHECK(second.get() == 2);
  });
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(second_admitted.load());
  blocker.reset();  // the loop runs again: room appears
  producer.join();
  CHECK(second_admitted.load());
  CHECK(first.get() == 1);
  require_reconciled(loop.stats());
}

TEST_CASE("a submission waiting for room is released by stop with LoopStopped") {
  BackgroundLoop loop({.name = "full-stop",
                       .queue_capacity = 1,
                       .when_full = QueueFullPolicy::wait,
                       .full_wait = 30s,
                       .stall_threshold = std::chrono::nanoseconds::zero()});
  loop.start();
  std::optional<TaskHandle<int>> queued;
  std::optional<TaskHandle<int>> waiter_result;
  {
    LoopBlocker blocker(loop);
    queued = loop.submit([] { return 1; });
    std::thread waiter([&] { waiter_result = loop.submit([] { return 2; }); });
    std::this_thread::sleep_for(20ms);
    loop.request_stop(StopOptions{.cancel_timeout = 1s});
    waiter.join();
  }
  loop.stop();
  REQUIRE(waiter_result.has_value());
  REQUIRE_THROWS_AS(waiter_result->get(), LoopStopped);
  require_reconciled(loop.stats());
}

TEST_CASE("a submission from the loop's own thread never waits for room") {
  BackgroundLoop loop({.name = "full-self",
                       .queue_capacity = 1,
                       .when_full = QueueFullPolicy::wait,
                       .full_wait = 30s,
                       .stall_threshold = std::chrono::nanoseconds::zero()});
  loop.start();
  LoopHandle handle = loop.handle();
  auto outcome = loop.submit([handle] {
    auto a = handle.submit([] {});  // takes the one place
    try {
      auto b = handle.submit([] {});
      return std::string("admitted");
    } catch (const QueueFull&) {
      return std::string("queue full");
    }
  });
  REQUIRE(outcome.get() == "queue full");
}

TEST_CASE("under load every submission is either accepted and settled or refused with QueueFull") {
  BackgroundLoop loop({.name = "load", .queue_capacity = 8, .stall_threshold = std::chrono::nanoseconds::zero()});
  loop.start();
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 300;
  std::atomic<int> accepted{0}, refused{0}, settled{0}, wrong{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::vector<TaskHandle<int>> mine;
      for (int i = 0; i < kPerProducer; ++i) {
        SubmitOptions options;
        if (i % 2 == 0) {
          options.when_full = QueueFullPolicy::wait;
          options.full_wait = 2ms;
        }
        try {
          mine.push_back(loop.submit(
              [v = p * kPerProducer + i] {
                std::this_thread::sleep_for(20us);  // a slow loop
                return v;
              },
              options));
          ++accepted;
        } catch (const QueueFull&) {
          ++refused;
        }
      }
      for (std::size_t i = 0; i < mine.size(); ++i) {
        if (mine[i].wait_for(kDeadline) != std::future_status::ready) continue;
        ++settled;
        if (mine[i].get() < 0) ++wrong;
      }
    });
  }
  for (auto& t : producers) t.join();
  CHECK(accepted + refused == kProducers * kPerProducer);
  CHECK(settled.load() == accepted.load());
  CHECK(refused.load() > 0);
  CHECK(wrong.load() == 0);
  LoopStats s = loop.stats();
  CHECK(s.rejected_full == static_cast<std::uint64_t>(refused.load()));
  CHECK(s.completed == static_cast<std::uint64_t>(accepted.load()));
  CHECK(s.in_flight == 0);
  require_reconciled(s);
}

TEST_CASE("the in-flight list names each task, where it was submitted and its phase") {
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
  CHECK(std::string(list[0].where.file_name()).find("operations_test.cpp") != std::string::npos);
  CHECK(list[0].to_string().find("fetch-user (") == 0);
  CHECK(list[1].name.empty());
  CHECK(list[1].to_string().find("(unnamed)") == 0);
  CHECK(list[0].id < list[1].id);
  loop.stop();
  auto after = loop.in_flight();
  require_settles(after);
  CHECK(after.get().empty());
}

TEST_CASE("the shutdown report lists the abandoned tasks") {
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

TEST_CASE("request_stop from another thread stops the loop and the owner's stop joins it") {
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

TEST_CASE("live_loops lists running loops and not stopped ones") {
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

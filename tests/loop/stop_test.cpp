#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// Ignores the first cancellation and goes on waiting where the cancel cannot reach it.
asio::awaitable<void> stubborn(std::atomic<bool>* frame_destroyed_on_loop, LoopHandle loop) {
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

// Counts its own destruction: the end of the coroutine frame it lives in.
struct DestructionCounter {
  std::atomic<int>* count;
  ~DestructionCounter() { ++*count; }
};

// Checked by a task's coroutine after each resumption: was its own handle settled already?
struct ResumedAfterSettle {
  std::atomic<const TaskHandle<void>*> handle{nullptr};
  std::atomic<int> count{0};
  void check() {
    if (const TaskHandle<void>* settled = handle.load(); settled != nullptr && settled->ready()) ++count;
  }
};

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
  auto task = loop.submit([&] { return stubborn(&destroyed_on_loop, handle); });
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

TEST_CASE("the destructor with pending work never hangs and settles every handle", "[loop][stop]") {
  std::vector<TaskHandle<void>> handles;
  auto begin = std::chrono::steady_clock::now();
  {
    BackgroundLoop loop({.name = "lb-dtor"});
    loop.start();
    for (int i = 0; i < 100; ++i) handles.push_back(loop.submit([] { return sleep_for(std::chrono::hours(1)); }));
  }
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  for (auto& h : handles) {
    REQUIRE(h.ready());
    CHECK_THROWS_AS(h.get(), TaskCancelled);
  }
}

TEST_CASE("a host thread blocked in get is released by stop", "[loop][stop]") {
  BackgroundLoop loop({.name = "lb-release"});
  loop.start();
  auto sleeper = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
  std::atomic<bool> released{false};
  std::thread waiter([&] {
    try {
      sleeper.get();
    } catch (const TaskCancelled&) {
      released = true;
    }
  });
  std::this_thread::sleep_for(20ms);
  loop.stop();
  waiter.join();
  CHECK(released);
}

TEST_CASE("a callable blocking the loop past the deadlines makes stop detach instead of hang", "[loop][stop]") {
  // Shared with the detached thread, which may outlive this test's stack frame.
  auto release = std::make_shared<Gate>();
  auto entered = std::make_shared<std::atomic<bool>>(false);
  {
    BackgroundLoop loop({.name = "lb-blocked"});
    loop.start();
    auto parked = loop.submit([]() -> asio::awaitable<int> {
      co_await sleep_for(std::chrono::hours(1));
      co_return 1;
    });
    REQUIRE(eventually([&] { return loop.stats().running == 1; }));
    loop.post([release, entered] {
      *entered = true;
      release->wait(20s);
    });
    REQUIRE(eventually([&] { return entered->load(); }));
    auto queued = loop.submit([] { return 2; });
    auto begin = std::chrono::steady_clock::now();
    ShutdownReport report = loop.stop({.cancel_timeout = 100ms});
    CHECK(std::chrono::steady_clock::now() - begin < 5s);
    CHECK_FALSE(report.joined);
    // The loop thread cannot act until the callable returns (docs/lifecycle.md); then the
    // detached thread finishes the stop and every handle settles.
    CHECK_FALSE(parked.ready());
    release->open();
    require_settles(parked);
    require_settles(queued);
    CHECK_THROWS_AS(parked.get(), TaskCancelled);
    CHECK_THROWS_AS(queued.get(), TaskCancelled);  // still queued when the stop came: it never runs
  }
  // The detached thread finishes on its own once released.
  CHECK(eventually([] {
    auto names = thread_names();
    return std::count(names.begin(), names.end(), "lb-blocked") == 0;
  }));
}

TEST_CASE("every handle settles when stop races submissions from many threads", "[loop][stop]") {
  for (int round = 0; round < 20; ++round) {
    BackgroundLoop loop({.name = "lb-race"});
    loop.start();
    std::mutex m;
    std::vector<TaskHandle<int>> handles;
    std::vector<std::thread> producers;
    for (int t = 0; t < 3; ++t) {
      producers.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) {
          auto h = (i + t) % 2 ? loop.submit([] { return 1; }) : loop.submit([]() -> asio::awaitable<int> {
            co_await sleep_for(1ms);
            co_return 1;
          });
          std::lock_guard lock(m);
          handles.push_back(std::move(h));
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 * round));
    ShutdownReport report = loop.stop();
    for (auto& p : producers) p.join();
    std::uint64_t ok = 0, stopped = 0, cancelled = 0;
    for (auto& h : handles) {
      REQUIRE(h.ready());
      try {
        ok += static_cast<std::uint64_t>(h.get());
      } catch (const TaskCancelled&) {
        ++cancelled;
      } catch (const LoopStopped&) {
        ++stopped;
      }
    }
    CHECK(ok + stopped + cancelled == 600);
    ShutdownReport final_report = loop.stop();
    CHECK(final_report.completed == report.completed);
    CHECK(ok == report.completed);
  }
}

TEST_CASE("a dropping stop destroys parked frames on the loop thread without resuming them") {
  BackgroundLoop loop({.name = "drop"});
  loop.start();
  constexpr int kTasks = 1000;
  std::atomic<int> destroyed_on_loop{0}, resumed{0};
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < kTasks; ++i) {
    handles.push_back(loop.submit([&, handle = loop.handle()]() -> asio::awaitable<void> {
      struct Witness {
        std::atomic<int>* count;
        LoopHandle loop;
        ~Witness() {
          if (loop.on_loop_thread()) ++*count;
        }
      } witness{&destroyed_on_loop, handle};
      try {
        co_await sleep_for(std::chrono::hours(1));
      } catch (...) {
      }
      ++resumed;
    }));
  }
  REQUIRE(eventually([&] { return loop.stats().running == kTasks; }));
  auto report = loop.stop(StopOptions{.drop_in_flight = true});
  CHECK(report.cancelled == kTasks);
  CHECK(report.abandoned == 0);
  CHECK(report.abandoned_tasks.empty());
  CHECK(destroyed_on_loop.load() == kTasks);
  CHECK(resumed.load() == 0);
  for (auto& h : handles) REQUIRE_THROWS_AS(h.get(), TaskCancelled);
  LoopStats s = loop.stats();
  CHECK(s.submitted == s.cancelled);
  CHECK(s.in_flight == 0);
}

TEST_CASE("what a dropped frame's destructor posts to its task's executor is destroyed unrun") {
  auto loop = std::make_unique<BackgroundLoop>(LoopOptions{.name = "drop-post"});
  loop->start();
  constexpr int kTasks = 100;
  std::atomic<int> ran{0}, captures_destroyed_on_loop{0}, frames_destroyed{0};
  std::vector<asio::any_io_executor> derived_executors;  // made there, on the loop thread
  struct Capture {
    std::atomic<int>* count;
    LoopHandle loop;
    Capture(std::atomic<int>* c, LoopHandle l) : count(c), loop(std::move(l)) {}
    Capture(Capture&& other) noexcept : count(std::exchange(other.count, nullptr)), loop(other.loop) {}
    ~Capture() {
      if (count && loop.on_loop_thread()) ++*count;
    }
  };
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < kTasks; ++i) {
    handles.push_back(loop->submit([&, handle = loop->handle()]() -> asio::awaitable<void> {
      struct PostsOnDestruction {
        asio::any_io_executor executor;
        std::atomic<int>* ran;
        std::atomic<int>* destroyed;
        std::atomic<int>* frames;
        LoopHandle loop;
        std::vector<asio::any_io_executor>* derived;
        ~PostsOnDestruction() {
          ++*frames;
          asio::post(executor, [ran = ran, capture = Capture(destroyed, loop)] { ++*ran; });
          // Straight to the io_context too: destroyed unrun, on the loop thread, by the stop.
          asio::post(loop.get_executor(), [ran = ran, capture = Capture(destroyed, loop)] { ++*ran; });
          derived->push_back(asio::require(executor, asio::execution::blocking.never));
        }
      };
      // Its own statement: g++ 12 may destroy temporaries of a co_await full-expression twice.
      asio::any_io_executor executor = co_await asio::this_coro::executor;
      PostsOnDestruction witness{std::move(executor), &ran, &captures_destroyed_on_loop, &frames_destroyed, handle,
                                 &derived_executors};
      co_await sleep_for(std::chrono::hours(1));
    }));
  }
  REQUIRE(eventually([&] { return loop->stats().running == kTasks; }));
  auto report = loop->stop(StopOptions{.drop_in_flight = true});
  CHECK(report.cancelled == kTasks);
  CHECK(frames_destroyed.load() == kTasks);
  CHECK(ran.load() == 0);
  CHECK(captures_destroyed_on_loop.load() == 2 * kTasks);
  for (auto& h : handles) REQUIRE_THROWS_AS(h.get(), TaskCancelled);
  // An executor derived there outlives the shutdown: what it is given after the stop never
  // runs either, and goes with the loop's io_context.
  REQUIRE(derived_executors.size() == static_cast<std::size_t>(kTasks));
  std::atomic<int> ran_after_stop{0}, destroyed_after_stop{0};
  for (auto& executor : derived_executors) {
    asio::post(executor, [&ran_after_stop, guard = std::shared_ptr<void>(nullptr, [&](void*) { ++destroyed_after_stop; })] {
      ++ran_after_stop;
    });
  }
  derived_executors.clear();
  handles.clear();
  loop.reset();
  CHECK(ran_after_stop.load() == 0);
  CHECK(destroyed_after_stop.load() == kTasks);
}

TEST_CASE("a stop never resumes a task it settled as dropped even with a resumption queued") {
  for (int round = 0; round < 20; ++round) {
    BackgroundLoop loop({.name = "drop-queued"});
    loop.start();
    ResumedAfterSettle resumed;
    std::atomic<int> frames_destroyed{0};
    TaskHandle<void> task = loop.submit([&]() -> asio::awaitable<void> {
      DestructionCounter counter{&frames_destroyed};
      for (;;) {  // always has a resumption queued
        auto yield = asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        co_await std::move(yield);
        resumed.check();
      }
    });
    resumed.handle = &task;
    REQUIRE(eventually([&] { return loop.stats().running == 1; }));
    auto report = loop.stop(StopOptions{.drop_in_flight = true});
    resumed.handle = nullptr;
    CHECK(report.cancelled == 1);
    CHECK(report.joined);
    CHECK(resumed.count == 0);
    CHECK(frames_destroyed == 1);
    CHECK(loop.unhandled_errors() == 0);
    REQUIRE_THROWS_AS(task.get(), TaskCancelled);
  }
}

TEST_CASE("a task abandoned at the cancel deadline is not resumed by its cancelled wait afterwards") {
  for (int round = 0; round < 20; ++round) {
    BackgroundLoop loop({.name = "abandon-late"});
    loop.start();
    ResumedAfterSettle resumed;
    std::atomic<int> frames_destroyed{0};
    TaskHandle<void> task = loop.submit([&]() -> asio::awaitable<void> {
      DestructionCounter counter{&frames_destroyed};
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
      boost::system::error_code ignored;
      auto wait = timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      co_await std::move(wait);
      resumed.check();
    });
    resumed.handle = &task;
    REQUIRE(eventually([&] { return loop.stats().running == 1; }));
    auto report = loop.stop(StopOptions{.cancel_timeout = std::chrono::nanoseconds(0)});
    resumed.handle = nullptr;
    CHECK(report.joined);
    CHECK(report.abandoned + report.cancelled == 1);
    CHECK(resumed.count == 0);
    CHECK(frames_destroyed == 1);
    CHECK(loop.unhandled_errors() == 0);
    CHECK(task.ready());
  }
}

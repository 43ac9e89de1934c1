// A stop that drops its tasks (StopOptions::drop_in_flight) or abandons them at the cancel
// deadline: their frames die on the loop thread, and nothing resumes a task once settled.

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
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

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

TEST_CASE("a dropping stop destroys parked frames on the loop thread without resuming them", "[loop][stop][drop]") {
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

TEST_CASE("what a dropped frame's destructor posts to its task's executor is destroyed unrun", "[loop][stop][drop]") {
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

TEST_CASE("a stop never resumes a task it settled as dropped even with a resumption queued", "[loop][stop][drop]") {
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

TEST_CASE("a task abandoned at the cancel deadline is not resumed by its cancelled wait afterwards",
          "[loop][stop][abandon]") {
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

// A cancel that destroys its task's callable, and what the captures' destructors may do
// meanwhile: take their time while a stop or a second cancel comes, submit and wait, cancel.

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"
#include "support/threads.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("a stop waits for a cancel that is still destroying its task's callable", "[loop][cancel][stop]") {
  BackgroundLoop loop({.name = "lb-slow-dtor"});
  loop.start();
  std::atomic<bool> in_destructor{false};
  Gate release;
  struct SlowToDestroy {
    std::atomic<bool>* flag;
    Gate* release;
    SlowToDestroy(std::atomic<bool>* f, Gate* r) : flag(f), release(r) {}
    SlowToDestroy(SlowToDestroy&& other) noexcept : flag(std::exchange(other.flag, nullptr)), release(other.release) {}
    ~SlowToDestroy() {
      if (!flag) return;
      *flag = true;
      release->wait();  // still destroying the callable until the stop is under way
    }
  };
  std::optional<LoopBlocker> blocker(std::in_place, loop);
  auto task = loop.submit([slow = SlowToDestroy(&in_destructor, &release)] { return 1; });
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] { cancelled = task.cancel(); });
  REQUIRE(eventually([&] { return in_destructor.load(); }));
  blocker.reset();  // the loop reaches the task while the cancel is still destroying it
  // The destructor ends only once this thread is asleep in stop(), waiting for the loop.
  BlockingCall stopping;
  std::atomic<bool> stop_returned{false};
  std::thread releaser([&] {
    eventually([&] { return stopping.asleep() || stop_returned.load(); });
    release.open();
  });
  stopping.entering();
  ShutdownReport report = loop.stop();
  stop_returned = true;
  CHECK(task.ready());
  CHECK(report.cancelled == 1);
  releaser.join();
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
      // The behaviour under test, not a sync point: the callable takes its time to go, and
      // the second cancel must wait that time out. That cancel waits by yielding, which
      // shows nowhere a test could watch, so no gate can stand in for this time.
      std::this_thread::sleep_for(200ms);
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

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <atomic>
#include <cstddef>
#include <map>
#include <string>
#include <thread>
#include <vector>

using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// How each of `tasks` ended: by cancel cause, or "other" (a value, another error).
std::map<std::string, std::size_t> endings(std::vector<TaskHandle<void>>& tasks) {
  std::map<std::string, std::size_t> count;
  for (auto& task : tasks) {
    REQUIRE(task.wait_for(kDeadline) == std::future_status::ready);
    try {
      task.get();
      ++count["other"];
    } catch (const TaskCancelled& e) {
      ++count[to_string(e.cause())];
    } catch (...) {
      ++count["other"];
    }
  }
  return count;
}

std::vector<TaskHandle<void>> park(const BackgroundLoop& loop, int count) {
  std::vector<TaskHandle<void>> tasks;
  for (int i = 0; i < count; ++i) tasks.push_back(loop.submit([] { return sleep_for(std::chrono::hours(1)); }));
  return tasks;
}

}  // namespace

TEST_CASE("cancel_all counts only the tasks it cancelled itself", "[loop][cancel][counts]") {
  BackgroundLoop loop({.name = "lb-count-twice"});
  loop.start();
  auto tasks = park(loop, 10);
  REQUIRE(eventually([&] { return loop.stats().running == 10; }));
  TaskHandle<std::size_t> first, second;
  {
    // Both reach the loop in one batch, before any task has unwound from the first.
    LoopBlocker busy(loop);
    first = loop.cancel_all();
    second = loop.cancel_all();
  }
  require_settles(first);
  require_settles(second);
  CHECK(first.get() == 10);
  CHECK(second.get() == 0);
  auto ended = endings(tasks);
  CHECK(ended["cancel_all()"] == 10);
  const LoopStats stats = loop.stats();
  CHECK(stats.cancelled == 10);
  CHECK(loop.stop().cancelled == 10);
}

TEST_CASE("cancel_all does not count a task that cancel() reached first", "[loop][cancel][counts]") {
  BackgroundLoop loop({.name = "lb-count-after"});
  loop.start();
  auto tasks = park(loop, 10);
  REQUIRE(eventually([&] { return loop.stats().running == 10; }));
  TaskHandle<std::size_t> all;
  {
    LoopBlocker busy(loop);
    for (std::size_t i = 0; i < 3; ++i) CHECK(tasks[i].cancel());
    all = loop.cancel_all();
  }
  require_settles(all);
  CHECK(all.get() == 7);
  auto ended = endings(tasks);
  CHECK(ended["cancel()"] == 3);
  CHECK(ended["cancel_all()"] == 7);
  CHECK(loop.stats().cancelled == 10);
}

TEST_CASE("under concurrent cancels the cancel_all counts add up to what stats and the tasks say",
          "[loop][cancel][counts]") {
  constexpr int kSubmitters = 2;
  constexpr int kPerSubmitter = 500;
  BackgroundLoop loop({.name = "lb-count-race"});
  loop.start();
  std::atomic<int> submitters_left{kSubmitters};
  std::atomic<std::size_t> counted{0};
  std::atomic<bool> unsettled{false};  // a cancel_all handle that missed its deadline
  std::vector<std::vector<TaskHandle<void>>> tasks(kSubmitters);
  std::vector<std::thread> threads;
  for (int s = 0; s < kSubmitters; ++s) {
    threads.emplace_back([&, s] {
      auto& mine = tasks[static_cast<std::size_t>(s)];
      for (int i = 0; i < kPerSubmitter; ++i) {
        mine.push_back(loop.submit([] { return sleep_for(std::chrono::hours(1)); }));
        if (i % 3 == 0) mine[static_cast<std::size_t>(i / 2)].cancel();  // queued, running or ended
      }
      --submitters_left;
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      while (submitters_left.load() > 0) {
        auto count = loop.cancel_all();
        if (count.wait_for(kDeadline) != std::future_status::ready) {
          unsettled = true;
          return;
        }
        counted += count.get();
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE_FALSE(unsettled);
  // Whatever is left: every task has started once the queue is empty.
  REQUIRE(eventually([&] { return loop.stats().queued == 0; }));
  auto rest = loop.cancel_all();
  require_settles(rest);
  counted += rest.get();

  std::map<std::string, std::size_t> ended;
  for (auto& mine : tasks) {
    for (const auto& [how, n] : endings(mine)) ended[how] += n;
  }
  CHECK(ended["other"] == 0);
  CHECK(ended["cancel_all()"] == counted.load());
  CHECK(ended["cancel()"] + ended["cancel_all()"] == std::size_t{kSubmitters * kPerSubmitter});
  const LoopStats stats = loop.stats();
  CHECK(stats.cancelled == std::uint64_t{kSubmitters * kPerSubmitter});
  CHECK(stats.in_flight == 0);
  const ShutdownReport report = loop.stop();
  CHECK(report.cancelled == stats.cancelled);
}

TEST_CASE("the shutdown report counts up to its stop, and later refusals show in stats and in a later stop",
          "[loop][stop][counts]") {
  BackgroundLoop loop({.name = "lb-report-end"});
  loop.start();
  LoopHandle handle = loop.handle();
  auto done = loop.submit([] { return 1; });
  require_settles(done);
  auto sleeping = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
  REQUIRE(eventually([&] { return loop.stats().running == 1; }));
  const ShutdownReport first = loop.stop();
  CHECK(first.submitted == 2);
  CHECK(first.completed == 1);
  CHECK(first.cancelled == 1);
  CHECK(first.rejected == 0);
  CHECK(first.joined);

  // After the stop returned: refused, counted by stats, not by the report already made.
  auto late = handle.submit([] { return 2; });
  REQUIRE(late.ready());
  CHECK_THROWS_AS(late.get(), LoopStopped);
  CHECK_THROWS_AS(handle.post([] {}), LoopStopped);
  const LoopStats stats = loop.stats();
  CHECK(stats.rejected == 2);
  CHECK(stats.submitted == 4);
  CHECK(first.rejected == 0);

  // A later stop reads the counts again and repeats what the first stop did.
  const ShutdownReport again = loop.stop();
  CHECK(again.submitted == 4);
  CHECK(again.rejected == 2);
  CHECK(again.cancelled == first.cancelled);
  CHECK(again.duration == first.duration);
  CHECK(again.joined == first.joined);
  CHECK(again.submitted == again.completed + again.failed + again.cancelled + again.abandoned + again.rejected);
}

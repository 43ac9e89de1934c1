// LoopStats: every outcome counted, the counts reconciled, the submit-to-start lag measured.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"
#include "support/stats.hpp"

#include <boost/asio/awaitable.hpp>

#include <stdexcept>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("stats count every outcome and reconcile while idle and after stop", "[loop][stats]") {
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

TEST_CASE("queued submissions show in stats and their submit-to-start lag is measured", "[loop][stats][lag]") {
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
    // The behaviour under test, not a sync point: the ten wait in the queue for a known
    // time, which their lag must show.
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

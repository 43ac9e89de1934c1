// Backpressure: a bounded queue refuses with QueueFull, or makes the submitter wait for room
// (until its deadline, or a stop), and never loses a submission it accepted.

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"
#include "support/stats.hpp"
#include "support/threads.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("a full queue refuses submissions at once with QueueFull and nothing is lost", "[loop][backpressure]") {
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

TEST_CASE("a waiting submission gets in when room appears and fails at its deadline otherwise",
          "[loop][backpressure][wait]") {
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
  BlockingCall waiting_for_room;
  std::thread producer([&] {
    waiting_for_room.entering();
    auto second = loop.submit([] { return 2; });
    second_admitted = true;
    CHECK(second.get() == 2);
  });
  // The producer is asleep inside submit(): waiting for room, not admitted while none is.
  CHECK(waiting_for_room.wait_until_asleep());
  CHECK_FALSE(second_admitted.load());
  blocker.reset();  // the loop runs again: room appears
  producer.join();
  CHECK(second_admitted.load());
  CHECK(first.get() == 1);
  require_reconciled(loop.stats());
}

TEST_CASE("a submission waiting for room is released by stop with LoopStopped", "[loop][backpressure][stop]") {
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
    BlockingCall waiting_for_room;
    std::thread waiter([&] {
      waiting_for_room.entering();
      waiter_result = loop.submit([] { return 2; });
    });
    // The stop must find the waiter already asleep in submit(), not yet to arrive there.
    CHECK(waiting_for_room.wait_until_asleep());
    loop.request_stop(StopOptions{.cancel_timeout = 1s});
    waiter.join();
  }
  loop.stop();
  REQUIRE(waiter_result.has_value());
  REQUIRE_THROWS_AS(waiter_result->get(), LoopStopped);
  require_reconciled(loop.stats());
}

TEST_CASE("a submission from the loop's own thread never waits for room", "[loop][backpressure][deadlock]") {
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

TEST_CASE("under load every submission is either accepted and settled or refused with QueueFull",
          "[loop][backpressure][load]") {
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
                // The behaviour under test, not a sync point: a loop slower than its
                // producers, so that the queue fills.
                std::this_thread::sleep_for(20us);
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

// The loop's counts stay exact under a race the stress test found to bend them: a stop
// that overtakes submissions from several threads.

#include <loopbridge/loop/background_loop.hpp>

#include "figures.hpp"
#include "support/deadline.hpp"
#include "support/process.hpp"

#include <thread>
#include <vector>

using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("counts stay exact when submissions race the stop into the queue", "[reliability][counts]") {
  // Three kinds of submission meet here: those the loop starts before the stop, those
  // refused at the call (counted by the host thread), and those that passed the accepting
  // check just before the stop and reach the queue after it (refused by the loop). Each
  // must be counted once as submitted and once as what became of it.
  const int rounds = kSanitized ? 20 : 40;
  const int per_thread = kSanitized ? 5'000 : 20'000;
  int bad_rounds = 0;
  std::string first_bad;
  std::uint64_t all_calls = 0;
  for (int round = 0; round < rounds; ++round) {
    LoopOptions options{.name = "lb-count-stop"};
    options.error_handler = [](std::exception_ptr, std::string_view) {};  // refused posts land here
    BackgroundLoop loop(options);
    loop.start();
    std::atomic<bool> stop_now{false};
    std::atomic<std::uint64_t> calls{0};
    std::vector<std::thread> producers;
    for (int t = 0; t < 3; ++t) {
      producers.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          if (t == 0 && i % 2 == 0) {
            try {
              loop.post([] {});
            } catch (const LoopStopped&) {
            }
          } else {
            (void)loop.submit([] { return 1; });
          }
          calls.fetch_add(1);
          if (stop_now.load() && i % 64 == 0 && loop.state() == LoopState::stopped) break;
        }
      });
    }
    REQUIRE(eventually([&] { return calls.load() > static_cast<std::uint64_t>(round % 50) * 20; }));
    stop_now = true;
    loop.stop();
    for (auto& p : producers) p.join();
    ShutdownReport report = loop.stop();
    all_calls += calls.load();
    const bool exact = report.submitted == calls.load() &&
                       report.submitted == report.completed + report.failed + report.cancelled + report.abandoned +
                                               report.rejected;
    if (!exact && bad_rounds++ == 0) {
      first_bad = "round " + std::to_string(round) + ": " + std::to_string(calls.load()) + " calls; " + report.summary();
    }
  }
  INFO(first_bad);
  CHECK(bad_rounds == 0);
  record_figure("counts", "stops raced", static_cast<std::uint64_t>(rounds));
  record_figure("counts", "submissions", all_calls);
}

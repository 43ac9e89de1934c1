// A stop keeps its deadlines however much work it finds: queued behind a busy loop thread
// (it settles it cancelled without starting it) or started and parked (it cancels it a
// part at a time and abandons what the deadline leaves). At every size the thread is joined,
// every handle has settled when stop() returns, and the report adds up. The largest sizes
// run in optimised builds (and the reliability report); debug and sanitizer builds run
// smaller ones.

#include <loopbridge/loop/background_loop.hpp>

#include "figures.hpp"
#include "support/coro.hpp"
#include "support/deadline.hpp"
#include "support/process.hpp"

#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

std::vector<std::size_t> backlog_sizes() {
#if defined(NDEBUG)
  if (!kSanitized) return {10, 10'000, 1'000'000, 2'000'000};
#endif
  if (!kSanitized) return {10, 10'000, 200'000};
  return {10, 10'000};
}

// The most a stop with these options may take (no hooks): its deadlines plus the margin
// that docs/lifecycle.md promises for the thread's own teardown (2 s, and 1 s per million
// tasks in flight).
std::chrono::nanoseconds stop_bound(const StopOptions& options, std::size_t in_flight) {
  return options.drain_timeout + options.cancel_timeout + std::chrono::seconds(2) +
         std::chrono::microseconds(in_flight);
}

std::size_t unsettled(const std::vector<TaskHandle<void>>& handles) {
  std::size_t count = 0;
  for (const auto& handle : handles) count += handle.ready() ? 0 : 1;
  return count;
}

void require_adds_up(const ShutdownReport& report) {
  CHECK(report.submitted == report.completed + report.failed + report.cancelled + report.abandoned + report.rejected);
}

}  // namespace

TEST_CASE("a stop behind any backlog of queued coroutines settles them without starting them, within its deadlines",
          "[reliability][backlog][stop]") {
  for (std::size_t size : backlog_sizes()) {
    INFO(size << " queued coroutines");
    BackgroundLoop loop({.name = "lb-backlog"});
    loop.start();
    std::atomic<std::size_t> started{0};
    std::vector<TaskHandle<void>> handles;
    handles.reserve(size);
    {
      LoopBlocker blocker(loop);  // everything below queues behind it
      for (std::size_t i = 0; i < size; ++i) {
        handles.push_back(loop.submit([&started]() -> asio::awaitable<void> {
          ++started;
          co_await sleep_for(std::chrono::hours(1));  // would park, if it ever started
        }));
      }
      loop.request_stop();
    }  // the blocker returns: the loop finds the stop, and the backlog behind it
    const StopOptions options;
    const auto began = std::chrono::steady_clock::now();
    ShutdownReport report = loop.stop(options);
    const auto took = std::chrono::steady_clock::now() - began;
    CHECK(report.joined);
    CHECK(took < stop_bound(options, size));
    CHECK(unsettled(handles) == 0);
    CHECK(started.load() == 0);
    CHECK(report.cancelled == size);
    require_adds_up(report);
    for (std::size_t i = 0; i < handles.size(); i += 1 + handles.size() / 16) {
      REQUIRE_THROWS_AS(handles[i].get(), TaskCancelled);
    }
    record_figure("backlog", "queued " + std::to_string(size) + ": stop, ms",
                  static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  }
}

TEST_CASE("a stop of any number of parked coroutines cancels them within its deadlines",
          "[reliability][backlog][stop]") {
  for (std::size_t size : backlog_sizes()) {
    INFO(size << " parked coroutines");
    BackgroundLoop loop({.name = "lb-parked"});
    loop.start();
    std::vector<TaskHandle<void>> handles;
    handles.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
      handles.push_back(loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); }));
    }
    REQUIRE(eventually([&] { return loop.stats().running == size; }, std::chrono::seconds(60)));
    const StopOptions options{.cancel_timeout = std::chrono::seconds(2)};
    const auto began = std::chrono::steady_clock::now();
    ShutdownReport report = loop.stop(options);
    const auto took = std::chrono::steady_clock::now() - began;
    CHECK(report.joined);
    CHECK(took < stop_bound(options, size));
    CHECK(unsettled(handles) == 0);
    CHECK(report.cancelled + report.abandoned == size);  // those past the deadline are abandoned
    require_adds_up(report);
    record_figure("backlog", "parked " + std::to_string(size) + ": stop, ms",
                  static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
    record_figure("backlog", "parked " + std::to_string(size) + ": abandoned", report.abandoned);
  }
}

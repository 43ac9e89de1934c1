// Stall detection: a handler that keeps the loop thread from its event loop past the
// threshold is reported with its task's name, where it was submitted and how long it ran.
//
// The sleeps here are the stalls under test: a stall must last. None is a sync point.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/awaitable.hpp>

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

/// What reaches a loop's stall handler.
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

/// Sleeps in its destructor: user code that runs after a command's own work.
struct SlowDestructor {
  std::chrono::milliseconds pause;
  ~SlowDestructor() { std::this_thread::sleep_for(pause); }
};

}  // namespace

TEST_CASE("a callable that blocks the loop thread is reported with its name and duration", "[loop][stall]") {
  StallLog log;
  BackgroundLoop loop({.name = "stall", .stall_threshold = 20ms, .stall_handler = log.handler()});
  loop.start();
  auto slow = loop.submit([] { std::this_thread::sleep_for(40ms); },  // the stall
                          SubmitOptions{.name = "slow-callable"});
  auto quick = loop.submit([] {}, SubmitOptions{.name = "quick"});
  require_settles(slow);
  require_settles(quick);
  loop.post([] { std::this_thread::sleep_for(30ms); }, SubmitOptions{.name = "slow-post"});  // the stall
  REQUIRE(eventually([&] { return log.get().size() == 2; }));
  auto reports = log.get();
  CHECK(reports[0].task == "slow-callable");
  CHECK(reports[0].loop == "stall");
  CHECK(reports[0].duration >= 40ms);
  CHECK(std::string(reports[0].where.file_name()).find("stall_test.cpp") != std::string::npos);
  CHECK(reports[1].task == "slow-post");
  CHECK(loop.stats().stalls == 2);
}

TEST_CASE("time spent after a command in a stall handler or a destructor is charged to no other command",
          "[loop][stall]") {
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
    loop.post([] { std::this_thread::sleep_for(30ms); }, SubmitOptions{.name = "slow"});  // the stall
    loop.post([&quick_ran] { ++quick_ran; }, SubmitOptions{.name = "quick-after-stall"});
    auto pause = std::make_shared<SlowDestructor>(SlowDestructor{30ms});
    loop.post([pause = std::move(pause)] {}, SubmitOptions{.name = "slow-captures"});
    loop.post([&quick_ran] { ++quick_ran; }, SubmitOptions{.name = "quick-after-captures"});
    {
      // Dropped before it runs: the loop destroys its result, after the task's own scope.
      auto dropped = loop.submit([] { return std::make_unique<SlowDestructor>(SlowDestructor{30ms}); },
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

TEST_CASE("a coroutine that blocks after a suspension is reported under its own name", "[loop][stall]") {
  StallLog log;
  BackgroundLoop loop({.name = "stall-co", .stall_threshold = 20ms, .stall_handler = log.handler()});
  loop.start();
  auto waiting = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); },
                             SubmitOptions{.name = "bystander"});
  auto blocking = loop.submit(
      []() -> asio::awaitable<int> {
        co_await sleep_for(5ms);
        std::this_thread::sleep_for(40ms);  // the stall: a synchronous call inside a coroutine
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

TEST_CASE("stall detection can be turned off and a throwing stall handler is contained", "[loop][stall][errors]") {
  std::atomic<int> errors{0};
  BackgroundLoop loop({.name = "stall-throw",
                       .error_handler = [&](std::exception_ptr, std::string_view) { ++errors; },
                       .stall_threshold = 10ms,
                       .stall_handler = [](const StallReport&) { throw std::runtime_error("handler bug"); }});
  loop.start();
  auto slow = loop.submit([] { std::this_thread::sleep_for(20ms); });  // the stall
  require_settles(slow);
  REQUIRE(eventually([&] { return errors.load() == 1; }));
  auto after = loop.submit([] { return 3; });
  require_settles(after);
  CHECK(after.get() == 3);
}

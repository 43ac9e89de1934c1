// Testing code that uses the default loop: each test replaces the default loop's factory,
// so that the library under test runs on a loop the test made (its own name, an error
// handler that collects what fire-and-forget work threw), and stops that loop when it ends,
// so that nothing one test started leaks into the next. The fixture builds on loopbridge's
// test hygiene check (loopbridge/testing/catch2.hpp), which then confirms that no loop
// outlived its test.

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "forecast.hpp"

#include <loopbridge/loopbridge.hpp>
#include <loopbridge/testing/catch2.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

/// Gives each test a default loop of its own, made on first use and stopped when the test
/// ends (before LoopHygiene checks that no loop outlived the test).
class TestDefaultLoop : public loopbridge::testing::LoopHygiene {
public:
  //! [fixture]
  TestDefaultLoop() {
    loopbridge::set_default_loop_factory([this] {
      return std::make_unique<loopbridge::BackgroundLoop>(loopbridge::LoopOptions{
          .name = "test-default",
          .error_handler = [this](std::exception_ptr error, std::string_view) { collect(error); }});
    });
  }

  ~TestDefaultLoop() {
    loopbridge::reset_default_loop({.cancel_timeout = 1s});
    loopbridge::set_default_loop_factory(nullptr);  // back to the library's own default
  }
  //! [fixture]

  /// The messages of the errors the loop's error handler received so far.
  std::vector<std::string> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }

  /// Stops the test's default loop now; the next default_loop() makes a fresh one.
  loopbridge::ShutdownReport stop_default_loop() { return loopbridge::reset_default_loop({.cancel_timeout = 1s}); }

private:
  void collect(std::exception_ptr error) {
    std::lock_guard lock(mutex_);
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      errors_.push_back(e.what());
    }
  }

  mutable std::mutex mutex_;
  std::vector<std::string> errors_;
};

/// Polls `condition` until it holds or two seconds pass.
template <class Condition>
bool eventually(Condition condition) {
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST_CASE_METHOD(TestDefaultLoop, "the library runs on the loop the test installed", "[forecast]") {
  CHECK(forecast::today("Oslo") == "Oslo: sunny");
  CHECK(loopbridge::default_loop().name() == "test-default");
}

TEST_CASE_METHOD(TestDefaultLoop, "the library's own exception reaches the caller with its type", "[forecast]") {
  CHECK_THROWS_AS(forecast::today(""), std::invalid_argument);
}

TEST_CASE_METHOD(TestDefaultLoop, "background work that fails reaches the test's error handler", "[forecast]") {
  forecast::watch("");
  REQUIRE(eventually([&] { return !errors().empty(); }));
  CHECK(errors().front() == "forecast: no city given");
}

TEST_CASE_METHOD(TestDefaultLoop, "stopping the test's loop cancels background work it left running", "[forecast]") {
  auto refreshes = forecast::watch("Lima");
  REQUIRE(eventually([&] { return *refreshes >= 2; }));

  loopbridge::ShutdownReport report = stop_default_loop();
  CHECK(report.cancelled == 1);
  CHECK(report.joined);
  const int after_stop = *refreshes;
  std::this_thread::sleep_for(20ms);
  CHECK(*refreshes == after_stop);  // nothing runs any more
}

TEST_CASE_METHOD(TestDefaultLoop, "each test starts with a fresh default loop", "[forecast]") {
  loopbridge::LoopHandle first = loopbridge::default_loop();
  stop_default_loop();
  loopbridge::LoopHandle second = loopbridge::default_loop();
  CHECK_FALSE(first == second);
  CHECK(first.state() == loopbridge::LoopState::stopped);
  CHECK(second.state() == loopbridge::LoopState::running);
}

// The code of docs/cookbook/mistakes.md, run. Each `//! [name]` region is shown in the guide
// as it is here (tests/docs/check_doc_snippets.cpp checks that): each mistake as a user
// writes it, with what loopbridge answers, and its fix.

#include <loopbridge/loopbridge.hpp>
#include <loopbridge/testing/catch2.hpp>

#include "support/deadline.hpp"

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include <cstddef>
#include <exception>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string load_text() { return "the quick brown fox"; }

std::size_t words_in(const std::string& text) {
  std::istringstream words(text);
  return static_cast<std::size_t>(std::distance(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()));
}

int parse_config() { throw std::runtime_error("config: line 3: unknown key"); }

/// The errors a loop sent to its error handler, for the tests to read.
class ErrorLog {
public:
  void add(const std::string& line) {
    const std::lock_guard lock(mutex_);
    lines_.push_back(line);
  }
  std::vector<std::string> lines() const {
    const std::lock_guard lock(mutex_);
    return lines_;
  }

private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

ErrorLog error_log;

}  // namespace

// Compiled, never run: it reads a local after its function returned.
namespace dangling {
//! [dangling-capture]
loopbridge::TaskHandle<std::size_t> count_words(const loopbridge::LoopHandle& loop) {
  std::string text = load_text();
  return loop.submit([&text] { return words_in(text); });   // `text` is gone when this returns
}
//! [dangling-capture]
}  // namespace dangling

namespace owned {
//! [owned-capture]
loopbridge::TaskHandle<std::size_t> count_words(const loopbridge::LoopHandle& loop) {
  std::string text = load_text();
  return loop.submit([text = std::move(text)] { return words_in(text); });   // the task owns it
}
//! [owned-capture]
}  // namespace owned

LOOPBRIDGE_TEST_CASE("mistakes: waiting for a result on the loop thread throws DeadlockError", "[docs][deadlock]") {
  loopbridge::BackgroundLoop loop({.name = "app"});
  loop.start();
  {
    //! [get-on-loop-thread]
    auto total = loop.submit([&loop] {
      auto part = loop.submit([] { return 42; });
      return part.get();   // blocks the loop thread, which would run `part`
    });
    //! [get-on-loop-thread]
    REQUIRE(total.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
    CHECK_THROWS_AS(total.get(), loopbridge::DeadlockError);
  }
  {
    //! [async-get]
    auto total = loop.submit([&loop]() -> boost::asio::awaitable<int> {
      auto part = loop.submit([] { return 42; });
      int value = co_await part.async_get();   // suspends this coroutine only
      co_return value;
    });
    //! [async-get]
    REQUIRE(total.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
    CHECK(total.get() == 42);
  }
  loop.stop();
}

LOOPBRIDGE_TEST_CASE("mistakes: a blocking call on the loop thread is reported as a stall; to_thread is not", "[docs][stall]") {
  loopbridge::BackgroundLoop loop({.name = "app"});
  loop.start();
  {
    //! [blocking-call]
    auto report = loop.submit([]() -> boost::asio::awaitable<std::string> {
      std::this_thread::sleep_for(150ms);   // a synchronous call: every other task of the loop waits
      co_return "report";
    });
    //! [blocking-call]
    REQUIRE(report.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
    CHECK(report.get() == "report");
    CHECK(loopbridge::test::eventually([&] { return loop.stats().stalls >= 1; }));
  }
  {
    //! [to-thread]
    auto report = loop.submit([]() -> boost::asio::awaitable<std::string> {
      auto call = loopbridge::to_thread([] {
        std::this_thread::sleep_for(150ms);   // on a worker thread: the loop goes on
        return std::string("report");
      });
      co_return co_await std::move(call);
    });
    //! [to-thread]
    const auto stalls_before = loop.stats().stalls;
    REQUIRE(report.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
    CHECK(report.get() == "report");
    CHECK(loop.stats().stalls == stalls_before);
  }
  loop.stop();
}

LOOPBRIDGE_TEST_CASE("mistakes: work that owns what it captures outlives the function that submitted it", "[docs][lifetime]") {
  loopbridge::BackgroundLoop loop({.name = "app"});
  loop.start();
  auto words = owned::count_words(loop);
  REQUIRE(words.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
  CHECK(words.get() == 4);
  loop.stop();
}

LOOPBRIDGE_TEST_CASE("mistakes: errors nobody waits for go to the error handler", "[docs][errors]") {
  //! [error-handler]
  loopbridge::BackgroundLoop loop({
      .name = "jobs",
      .error_handler = [](std::exception_ptr error, std::string_view context) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          error_log.add(std::string(context) + ": " + e.what());   // to your own log
        }
      },
  });
  //! [error-handler]
  loop.start();

  //! [post-throws]
  loop.post([] { throw std::runtime_error("disk full"); });   // no handle: nobody to tell
  //! [post-throws]
  CHECK(loopbridge::test::eventually([&] { return loop.stats().errors_reported == 1; }));

  {
    //! [dropped-handle]
    auto config = loop.submit(parse_config);
    //! [dropped-handle]
    REQUIRE(config.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
  }  // dropped unread: its exception goes to the error handler
  CHECK(loopbridge::test::eventually([&] { return loop.stats().errors_reported == 2; }));

  //! [kept-handle]
  auto config = loop.submit(parse_config);
  try {
    config.get();
  } catch (const std::runtime_error& e) {
    std::cerr << "no configuration: " << e.what() << "\n";   // the task's own exception
  }
  //! [kept-handle]
  CHECK(loop.stats().errors_reported == 2);
  loop.stop();

  const auto lines = error_log.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("disk full") != std::string::npos);
  CHECK(lines[1].find("unknown key") != std::string::npos);
}

LOOPBRIDGE_TEST_CASE("mistakes: a submission before start() or after stop() gets a typed error", "[docs][lifecycle]") {
  loopbridge::BackgroundLoop loop({.name = "app"});
  try {
    //! [submit-before-start]
    auto early = loop.submit([] { return 1; });   // throws InvalidState: the loop is not started
    //! [submit-before-start]
    FAIL("submit() before start() was accepted");
  } catch (const loopbridge::InvalidState& e) {
    std::cout << e.what() << "\n";
  }
  loop.start();
  loop.stop();

  //! [submit-after-stop]
  auto late = loop.submit([] { return 1; });   // settled at once: get() throws LoopStopped
  try {
    loop.post([] {});                           // throws LoopStopped
  } catch (const loopbridge::LoopStopped& e) {
    std::cerr << "shutting down, not accepted: " << e.what() << "\n";
  }
  //! [submit-after-stop]
  CHECK(late.ready());
  CHECK_THROWS_AS(late.get(), loopbridge::LoopStopped);
  CHECK(loop.stats().rejected == 2);
}

LOOPBRIDGE_TEST_CASE("mistakes: stop() on the loop thread only requests the stop", "[docs][lifecycle]") {
  loopbridge::BackgroundLoop loop({.name = "app"});
  loop.start();
  //! [stop-on-loop-thread]
  auto stopped = loop.submit([&loop] {
    loopbridge::ShutdownReport report = loop.stop();   // on the loop thread: returns at once
    return report.joined;                              // false: the loop has not stopped yet
  });
  //! [stop-on-loop-thread]
  REQUIRE(stopped.wait_for(loopbridge::test::kDeadline) == std::future_status::ready);
  CHECK_FALSE(stopped.get());
  //! [stop-from-owner]
  if (loop.wait_stopped(5s)) {                        // the owner's thread waits for it
    loopbridge::ShutdownReport report = loop.stop();   // and joins: the final report
    std::cout << report.summary() << "\n";
  }
  //! [stop-from-owner]
  CHECK(loop.state() == loopbridge::LoopState::stopped);
}

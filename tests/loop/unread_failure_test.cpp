// A task's own failure that nobody can read any more (its handle was dropped unread) goes to
// the loop's error handler, once, as asyncio logs "Task exception was never retrieved".

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

struct UnreadFailures {
  std::mutex mutex;
  std::vector<std::string> messages;

  LoopOptions options(const char* name) {
    LoopOptions options{.name = name};
    options.error_handler = [this](std::exception_ptr error, std::string_view) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        messages.emplace_back(e.what());
      }
    };
    return options;
  }
  std::size_t count(const std::string& what) {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(std::count(messages.begin(), messages.end(), what));
  }
};

}  // namespace

TEST_CASE("a failure nobody can read any more reaches the error handler once", "[loop][errors]") {
  UnreadFailures failures;
  BackgroundLoop loop(failures.options("lb-unread"));
  loop.start();

  SECTION("the handle is dropped before the task fails") {
    Gate fail;
    {
      auto task = loop.submit([&fail]() -> int {
        fail.wait();
        throw std::runtime_error("failed after the drop");
      });
    }
    fail.open();
    CHECK(eventually([&] { return failures.count("failed after the drop") == 1; }));
  }
  SECTION("the task fails before its handle is dropped unread") {
    {
      auto task = loop.submit([]() -> asio::awaitable<int> { throw std::runtime_error("failed before the drop"); });
      require_settles(task);
      CHECK(failures.count("failed before the drop") == 0);  // the handle could still read it
    }
    CHECK(failures.count("failed before the drop") == 1);
  }
  SECTION("a failure that was read, a cancellation and a stop's error are not reported") {
    {
      auto read = loop.submit([]() -> int { throw std::runtime_error("read by get()"); });
      CHECK_THROWS_AS(read.get(), std::runtime_error);
      auto cancelled = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
      REQUIRE(eventually([&] { return loop.stats().running == 1; }));
      cancelled.cancel();
      require_settles(cancelled);
      auto stopped = loop.submit([]() -> asio::awaitable<void> { co_await sleep_for(std::chrono::hours(1)); });
      REQUIRE(eventually([&] { return loop.stats().running == 1; }));
      loop.stop();
    }
    CHECK(loop.stats().errors_reported == 0);
  }
  loop.stop();
}

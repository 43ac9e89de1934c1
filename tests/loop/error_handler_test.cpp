// The error handler: a loop's own, the process-wide one, and what reaches them.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("the error handler receives fire-and-forget errors and hook errors at destruction", "[loop][errors]") {
  std::mutex mutex;
  std::vector<std::string> contexts;
  ErrorHandler handler = [&](std::exception_ptr error, std::string_view context) {
    std::lock_guard lock(mutex);
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      contexts.push_back(std::string(context) + ": " + e.what());
    }
  };
  std::uint64_t errors_reported = 0;
  {
    BackgroundLoop loop({.name = "errors", .error_handler = handler});
    loop.on_stop([]() -> asio::awaitable<void> {
      throw std::runtime_error("stop hook failed");
      co_return;
    });
    loop.start();
    loop.post([] { throw std::runtime_error("posted failure"); });
    loop.post([]() -> asio::awaitable<void> {
      co_await sleep_for(1ms);
      throw std::runtime_error("posted coroutine failure");
    });
    REQUIRE(eventually([&] { return loop.stats().errors_reported == 2; }));
    CHECK(loop.stats().failed == 2);
    errors_reported = loop.stats().errors_reported;
  }  // the destructor stops the loop: nobody gets its report
  std::lock_guard lock(mutex);
  REQUIRE(contexts.size() == 3);
  CHECK(errors_reported == 2);
  CHECK(contexts[0].find("posted failure") != std::string::npos);
  CHECK(contexts[1].find("posted coroutine failure") != std::string::npos);
  CHECK(contexts[2].find("stop hook failed") != std::string::npos);
  CHECK(contexts[2].find("destructor") != std::string::npos);
}

TEST_CASE("the process-wide error handler serves loops without their own and can be restored",
          "[loop][errors][global]") {
  std::atomic<int> seen{0};
  ErrorHandler previous = set_error_handler([&](std::exception_ptr, std::string_view) { ++seen; });
  {
    BackgroundLoop loop({.name = "global-err"});
    loop.start();
    loop.post([] { throw std::runtime_error("to the process handler"); });
    REQUIRE(eventually([&] { return seen.load() == 1; }));
  }
  set_error_handler(std::move(previous));
  CHECK(seen.load() == 1);
}

// A cancel as a coroutine meets it: landing between steps, in both branches of an awaitable
// operator, meeting another error while unwinding; and a task's executor outliving it.

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// One branch of an awaitable operator: counts its start, then waits where only a cancel ends it.
asio::awaitable<void> counted_branch(std::atomic<int>* started) {
  ++*started;
  co_await sleep_for(std::chrono::hours(1));
}

}  // namespace

TEST_CASE("a cancel that lands as a coroutine resumes after a successful step is not an error",
          "[loop][cancel][await]") {
  BackgroundLoop loop({.name = "cancel-yield"});
  loop.start();
  std::atomic<long> steps{0};
  auto task = loop.submit([&steps]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (;;) {
      co_await asio::post(executor, asio::use_awaitable);
      ++steps;
    }
  });
  // The coroutine is stepping: the cancel lands on one of its resumptions.
  REQUIRE(eventually([&] { return steps.load() > 100; }));
  task.cancel();
  require_settles(task);
  REQUIRE_THROWS_AS(task.get(), TaskCancelled);
  CHECK(loop.stats().errors_reported == 0);
}

TEST_CASE("a task's executor kept after the task ended still works", "[loop][executor]") {
  BackgroundLoop loop({.name = "exec-outlive"});
  loop.start();
  std::atomic<bool> resumed{false};
  auto spawner = loop.submit([&resumed]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    // A background coroutine that outlives the task that spawned it.
    asio::co_spawn(
        executor,
        [&resumed]() -> asio::awaitable<void> {
          asio::steady_timer timer(co_await asio::this_coro::executor, 30ms);
          co_await timer.async_wait(asio::use_awaitable);
          resumed = true;
        },
        asio::detached);
  });
  require_settles(spawner);
  spawner = {};  // the last handle: only the executor copies keep the task's state now
  REQUIRE(eventually([&] { return resumed.load(); }));
  loop.stop();
}

TEST_CASE("cancelling both branches of an awaitable operator is not an error", "[loop][cancel][await]") {
  BackgroundLoop loop({.name = "cancel-and"});
  loop.start();
  std::atomic<int> branches_started{0};
  auto task = loop.submit([&branches_started]() -> asio::awaitable<void> {
    auto both = counted_branch(&branches_started) && counted_branch(&branches_started);
    co_await std::move(both);
  });
  // Both branches wait on their timers: the cancel reaches the two of them.
  REQUIRE(eventually([&] { return branches_started.load() == 2; }));
  task.cancel();
  require_settles(task);
  REQUIRE_THROWS_AS(task.get(), TaskCancelled);
  CHECK(loop.stats().errors_reported == 0);
}

TEST_CASE("an error other than operation_aborted thrown while cancelled reaches the error handler",
          "[loop][cancel][errors]") {
  // A connection reset or an I/O error met while unwinding is the task's own error, not the
  // cancellation: it must not be dropped with it.
  std::mutex mutex;
  std::vector<std::string> reported;
  LoopOptions options{.name = "lb-cancel-err"};
  options.error_handler = [&](std::exception_ptr error, std::string_view) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex);
      reported.emplace_back(e.what());
    }
  };
  BackgroundLoop loop(options);
  loop.start();
  const boost::system::error_code errors[] = {asio::error::connection_reset, asio::error::operation_aborted,
                                              make_error_code(boost::system::errc::io_error)};
  for (const auto& thrown : errors) {
    auto task = loop.submit([thrown]() -> asio::awaitable<void> {
      try {
        co_await sleep_for(std::chrono::hours(1));
      } catch (const boost::system::system_error&) {
      }
      throw boost::system::system_error(thrown);  // what the unwinding met
    });
    REQUIRE(eventually([&] { return loop.stats().running == 1; }));
    task.cancel();
    require_settles(task);
    CHECK_THROWS_AS(task.get(), TaskCancelled);
  }
  std::lock_guard lock(mutex);
  REQUIRE(reported.size() == 2);  // operation_aborted is the cancellation itself
  CHECK(reported[0].find(asio::error::make_error_code(asio::error::connection_reset).message()) != std::string::npos);
}

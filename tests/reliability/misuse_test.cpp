// The misuses that users of asyncio, anyio, asgiref, Tokio, folly and Asio run into, each
// shown to end in loopbridge's typed error instead of a hang, a crash or silence. The
// catalogue in docs/reliability.md names the peer complaint behind each test; misuses
// already shown by tests/loop and tests/bridge are catalogued there, not repeated here.

#include <loopbridge/bridge/default_loop.hpp>
#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/loop/background_loop.hpp>

#include "figures.hpp"
#include "support/deadline.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mutex>
#include <optional>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

asio::awaitable<int> later(int value, std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
  co_return value;
}

// The errors an error handler received, as exception-type checks.
struct Reported {
  std::mutex mutex;
  std::vector<std::exception_ptr> errors;
  std::vector<std::string> contexts;
  ErrorHandler handler() {
    return [this](std::exception_ptr e, std::string_view context) {
      std::lock_guard lock(mutex);
      errors.push_back(e);
      contexts.emplace_back(context);
    };
  }
  template <class E>
  bool has() {
    std::lock_guard lock(mutex);
    for (const auto& e : errors) {
      try {
        std::rethrow_exception(e);
      } catch (const E&) {
        return true;
      } catch (...) {
      }
    }
    return false;
  }
};

bool thread_gone(const std::string& name) {
  auto names = thread_names();
  return std::count(names.begin(), names.end(), name) == 0;
}

}  // namespace

TEST_CASE("destroying a loop on its own thread is reported as DeadlockError instead of hanging",
          "[reliability][misuse]") {
  // Tokio: "Cannot drop a runtime in a context where blocking is not allowed"; a thread
  // joining itself (std::thread, boost::thread) deadlocks or throws resource_deadlock.
  Reported reported;
  LoopOptions options{.name = "lb-self-dtor"};
  options.error_handler = reported.handler();
  auto loop = std::make_unique<BackgroundLoop>(options);
  loop->start();
  // Submitted through a handle: the BackgroundLoop may be gone before submit() returns.
  LoopHandle handle = loop->handle();
  auto destroyer = handle.submit([&loop] { loop.reset(); });
  require_settles(destroyer);
  destroyer.get();
  CHECK(reported.has<DeadlockError>());
  CHECK(eventually([] { return thread_gone("lb-self-dtor"); }));
  record_figure("misuse", "cases", 1);
}

TEST_CASE("a loop made and destroyed inside another loop's task is reported and still ends",
          "[reliability][misuse]") {
  // Tokio: "Cannot start a runtime from within a runtime". Starting one is allowed here (it
  // blocks the outer loop briefly); destroying it there cannot join, and says so.
  Reported reported;
  BackgroundLoop outer({.name = "lb-outer"});
  outer.start();
  auto nested = outer.submit([&reported] {
    LoopOptions options{.name = "lb-inner"};
    options.error_handler = reported.handler();
    BackgroundLoop inner(options);
    inner.start();
    auto value = inner.submit([] { return 3; });
    // Blocking on the inner loop from here would be a wait on a loop thread.
    try {
      value.get();
    } catch (const DeadlockError&) {
      return true;
    }
    return false;
  });
  require_settles(nested);
  CHECK(nested.get());
  CHECK(reported.has<DeadlockError>());
  CHECK(eventually([] { return thread_gone("lb-inner"); }));
  record_figure("misuse", "cases", 1);
}

TEST_CASE("get() in a completion callback on the loop thread throws DeadlockError and result() works",
          "[reliability][misuse]") {
  // folly: calling .get() inside a continuation on the EventBase thread deadlocks.
  BackgroundLoop loop({.name = "lb-cb-get"});
  loop.start();
  std::atomic<int> outcome{0};
  loop.submit([] { return later(5, 1ms); }).on_settled([&](TaskHandle<int> settled) {
    try {
      settled.get();
      outcome = -1;
    } catch (const DeadlockError&) {
      outcome = settled.result();
    }
  });
  CHECK(eventually([&] { return outcome.load() != 0; }));
  CHECK(outcome == 5);
  record_figure("misuse", "cases", 1);
}

TEST_CASE("a second simultaneous wait on one task is refused with InvalidState", "[reliability][misuse]") {
  // folly: FutureAlreadyContinued ("a Future can have only one continuation").
  BackgroundLoop loop({.name = "lb-two-waits"});
  loop.start();
  auto slow = loop.submit([] { return later(1, 50ms); });
  // Commands from one thread run in order: the first wait is registered before the second.
  auto first = loop.submit([&]() -> asio::awaitable<int> { co_return co_await slow.async_get(); });
  auto second = loop.submit([&] {
    slow.async_wait([](boost::system::error_code) {});
    return 0;
  });
  require_settles(second);
  CHECK_THROWS_AS(second.get(), InvalidState);
  require_settles(first);
  CHECK(first.get() == 1);
  record_figure("misuse", "cases", 1);
}

TEST_CASE("an exception escaping a handler posted straight to the executor is reported and the loop goes on",
          "[reliability][misuse]") {
  // Asio: an exception from a handler propagates out of io_context::run() and, unless the
  // thread's owner catches it, ends the thread and the program.
  Reported reported;
  LoopOptions options{.name = "lb-raw-post"};
  options.error_handler = reported.handler();
  BackgroundLoop loop(options);
  loop.start();
  asio::post(loop.get_executor(), [] { throw std::runtime_error("raw handler failed"); });
  CHECK(eventually([&] { return reported.has<std::runtime_error>(); }));
  auto still = loop.submit([] { return 2; });
  require_settles(still);
  CHECK(still.get() == 2);
  record_figure("misuse", "cases", 1);
}

TEST_CASE("reset_default_loop on a loop thread throws DeadlockError", "[reliability][misuse]") {
  // asyncio: closing the running loop from inside it ("Cannot close a running event loop").
  set_default_loop_factory(nullptr);
  LoopHandle handle = default_loop();
  auto inside = handle.submit([] {
    try {
      reset_default_loop();
    } catch (const DeadlockError&) {
      return true;
    }
    return false;
  });
  require_settles(inside);
  CHECK(inside.get());
  reset_default_loop();
  record_figure("misuse", "cases", 1);
}

TEST_CASE("dropping a handle does not cancel its task", "[reliability][misuse]") {
  // Tokio: dropping a JoinHandle detaches the task; asyncio: "Task was destroyed but it is
  // pending!" when the last reference to a running task goes. Here the task runs to its end.
  BackgroundLoop loop({.name = "lb-drop"});
  loop.start();
  std::atomic<bool> finished{false};
  (void)loop.submit([&]() -> asio::awaitable<void> {
    co_await later(0, 5ms);
    finished = true;
  });  // the handle is destroyed at once
  CHECK(eventually([&] { return finished.load(); }));
  ShutdownReport report = loop.stop();
  CHECK(report.completed == 1);
  CHECK(report.cancelled == 0);
  record_figure("misuse", "cases", 1);
}

TEST_CASE("a task that awaits its own handle gets DeadlockError", "[reliability][misuse]") {
  // asyncio raises "Task cannot await on itself"; without the check the wait would last
  // until a cancel or stop.
  BackgroundLoop loop({.name = "lb-self-await"});
  loop.start();
  std::optional<TaskHandle<int>> self;
  Gate handed_over;
  auto handle = loop.submit([&]() -> asio::awaitable<int> {
    asio::steady_timer poll(co_await asio::this_coro::executor);
    while (!handed_over.wait(0ms)) {
      poll.expires_after(1ms);
      co_await poll.async_wait(asio::use_awaitable);
    }
    co_return co_await self->async_get();
  });
  self.emplace(std::move(handle));
  handed_over.open();
  require_settles(*self);
  CHECK_THROWS_AS(self->result(), DeadlockError);
  // Another task awaiting it is no misuse.
  auto other = loop.submit([]() -> asio::awaitable<int> { co_return 7; });
  auto waiter = loop.submit([&]() -> asio::awaitable<int> { co_return co_await other.async_get(); });
  require_settles(waiter);
  CHECK(waiter.get() == 7);
  record_figure("misuse", "cases", 1);
}

TEST_CASE("posting a coroutine after stop throws LoopStopped", "[reliability][misuse]") {
  // asyncio: "RuntimeError: Event loop is closed"; an Asio post to a stopped io_context
  // is silently never run.
  BackgroundLoop loop({.name = "lb-late-post"});
  loop.start();
  loop.stop();
  CHECK_THROWS_AS(loop.post([]() -> asio::awaitable<void> { co_return; }), LoopStopped);
  CHECK(loop.stop().rejected == 1);
  record_figure("misuse", "cases", 1);
}

TEST_CASE("call_host from a coroutine spawned straight on the executor throws HostNotWaiting",
          "[reliability][misuse]") {
  // asgiref: async_to_sync / thread_sensitive calls from a context with no waiting thread.
  BackgroundLoop loop({.name = "lb-raw-spawn"});
  loop.start();
  std::promise<bool> refused;
  auto result = refused.get_future();
  asio::co_spawn(
      loop.get_executor(),
      [&]() -> asio::awaitable<void> {
        try {
          auto op = call_host([] { return 1; });
          co_await std::move(op);
          refused.set_value(false);
        } catch (const HostNotWaiting&) {
          refused.set_value(true);
        }
      },
      asio::detached);
  REQUIRE(result.wait_for(kDeadline) == std::future_status::ready);
  CHECK(result.get());
  record_figure("misuse", "cases", 1);
}

TEST_CASE("stop() inside an on_stop hook returns at once instead of waiting on itself", "[reliability][misuse]") {
  // Quart / asyncio: calling shutdown from a shutdown hook re-enters the loop's stop.
  BackgroundLoop loop({.name = "lb-hook-stop"});
  std::atomic<int> joined{-1};
  loop.on_stop([&]() -> asio::awaitable<void> {
    joined = loop.stop().joined ? 1 : 0;
    co_return;
  });
  loop.start();
  auto begin = std::chrono::steady_clock::now();
  ShutdownReport report = loop.stop();
  CHECK(std::chrono::steady_clock::now() - begin < 2s);
  CHECK(joined == 0);
  CHECK(report.joined);
  CHECK(report.hook_errors.empty());
  record_figure("misuse", "cases", 1);
}

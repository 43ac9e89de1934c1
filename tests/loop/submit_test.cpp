#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

struct Custom : std::runtime_error {
  explicit Custom(int c) : std::runtime_error("custom"), code(c) {}
  int code;
};

/// The code of the Custom error that `task.get()` rethrows; fails the test if it throws none.
int custom_code(TaskHandle<int>& task) {
  try {
    task.get();
  } catch (const Custom& e) {
    return e.code;
  }
  FAIL("no exception");
  return 0;
}

asio::awaitable<int> add_later(int a, int b) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return a + b;
}

}  // namespace

TEST_CASE("a submitted coroutine's value comes back through get", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-submit"});
  loop.start();
  auto sum = loop.submit([] { return add_later(20, 22); });
  require_settles(sum);
  CHECK(sum.ready());
  CHECK(sum.get() == 42);
  CHECK_FALSE(sum.valid());
}

TEST_CASE("an awaitable object can be submitted directly", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-awaitable"});
  loop.start();
  auto sum = loop.submit(add_later(1, 2));
  require_settles(sum);
  CHECK(sum.get() == 3);
}

TEST_CASE("void and move-only results travel", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-moveonly"});
  loop.start();
  auto nothing = loop.submit([]() -> asio::awaitable<void> { co_return; });
  auto owned = loop.submit([]() -> asio::awaitable<std::unique_ptr<int>> { co_return std::make_unique<int>(5); });
  auto owned_plain = loop.submit([] { return std::make_unique<std::string>("plain"); });
  require_settles(nothing);
  nothing.get();
  require_settles(owned);
  CHECK(*owned.get() == 5);
  require_settles(owned_plain);
  CHECK(*owned_plain.get() == "plain");
}

TEST_CASE("a plain callable runs on the loop thread", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-callable"});
  loop.start();
  auto where = loop.submit([&] { return loop.on_loop_thread(); });
  require_settles(where);
  CHECK(where.get());
}

TEST_CASE("a task's exception is rethrown with its original type", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-throw"});
  loop.start();
  auto from_coroutine = loop.submit([]() -> asio::awaitable<int> {
    co_await add_later(0, 0);
    throw Custom(7);
  });
  auto from_callable = loop.submit([]() -> int { throw Custom(8); });
  require_settles(from_coroutine);
  require_settles(from_callable);
  CHECK(custom_code(from_coroutine) == 7);
  CHECK(custom_code(from_callable) == 8);
}

TEST_CASE("wait_for and wait_until and ready report progress without consuming", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-waits"});
  loop.start();
  Gate release;
  auto gated = loop.submit([&]() -> asio::awaitable<int> {
    while (!release.wait(0ms)) co_await add_later(0, 0);
    co_return 1;
  });
  CHECK_FALSE(gated.ready());
  CHECK(gated.wait_for(20ms) == std::future_status::timeout);
  CHECK(gated.wait_until(std::chrono::system_clock::now() + 20ms) == std::future_status::timeout);
  CHECK(gated.wait_for(0ms) == std::future_status::timeout);
  release.open();
  CHECK(gated.wait_until(std::chrono::steady_clock::now() + kDeadline) == std::future_status::ready);
  CHECK(gated.ready());
  CHECK(gated.wait_for(0ms) == std::future_status::ready);
  gated.wait();
  CHECK(gated.get() == 1);
}

TEST_CASE("result() reads a settled task without blocking and refuses an unsettled one", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-result"});
  loop.start();
  Gate release;
  auto gated = loop.submit([&] { return release.wait() ? 3 : 0; });
  CHECK_THROWS_AS(gated.result(), InvalidState);
  release.open();
  require_settles(gated);
  CHECK(gated.result() == 3);
}

TEST_CASE("a posted task's exception reaches the error handler and is counted", "[loop][submit][errors]") {
  std::mutex m;
  std::vector<std::string> reports;
  LoopOptions options{.name = "lb-post"};
  options.error_handler = [&](std::exception_ptr error, std::string_view context) {
    std::lock_guard lock(m);
    try {
      std::rethrow_exception(error);
    } catch (const Custom& e) {
      reports.push_back(std::string(context) + ": custom " + std::to_string(e.code));
    }
  };
  BackgroundLoop loop(options);
  loop.start();
  loop.post([] { throw Custom(1); });
  loop.post([]() -> asio::awaitable<void> {
    co_await add_later(0, 0);
    throw Custom(2);
  });
  std::atomic<bool> ran{false};
  loop.post([&] { ran = true; });
  REQUIRE(eventually([&] { return loop.unhandled_errors() == 2; }));
  CHECK(ran);
  std::lock_guard lock(m);
  REQUIRE(reports.size() == 2);
  CHECK(reports[0] == "posted task: custom 1");
  CHECK(reports[1] == "posted task: custom 2");
}

TEST_CASE("the callable is destroyed on the loop thread before the handle settles", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-captures"});
  loop.start();
  struct Probe {
    std::atomic<bool>* destroyed_on_loop;
    LoopHandle loop;
    ~Probe() {
      if (destroyed_on_loop) *destroyed_on_loop = loop.on_loop_thread();
    }
  };
  std::atomic<bool> destroyed_on_loop{false};
  auto probe = std::make_shared<Probe>(Probe{&destroyed_on_loop, loop.handle()});
  auto task = loop.submit([probe = std::move(probe)]() -> asio::awaitable<int> { co_return 1; });
  require_settles(task);
  CHECK(destroyed_on_loop);
  CHECK(task.get() == 1);
}

TEST_CASE("a callable that throws instead of returning its coroutine fails its task, and the loop goes on",
          "[loop][submit][errors]") {
  BackgroundLoop loop({.name = "lb-no-body"});
  loop.start();
  // Not a coroutine itself: it would return one, but throws first.
  auto task = loop.submit([]() -> asio::awaitable<int> { throw Custom(9); });
  require_settles(task);
  CHECK(custom_code(task) == 9);
  auto next = loop.submit(add_later, 2, 3);
  require_settles(next);
  CHECK(next.get() == 5);
}

TEST_CASE("a coroutine's parameters are destroyed before its handle settles", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-body-params"});
  loop.start();
  struct Probe {
    explicit Probe(std::shared_ptr<std::atomic<bool>> flag) : destroyed(std::move(flag)) {}
    Probe(Probe&& other) noexcept = default;  // a moved-from probe reports nothing
    ~Probe() {
      if (destroyed) *destroyed = true;
    }
    std::shared_ptr<std::atomic<bool>> destroyed;
  };
  auto body = [](Probe probe, bool fail) -> asio::awaitable<int> {
    co_await add_later(0, 0);
    if (fail) throw Custom(1);
    co_return probe.destroyed ? 1 : 0;
  };
  for (bool fail : {false, true}) {
    auto destroyed = std::make_shared<std::atomic<bool>>(false);
    // The body's frame holds the only probe that reports.
    auto task = loop.submit([&body, destroyed, fail] { return body(Probe(destroyed), fail); });
    require_settles(task);
    CHECK(*destroyed);  // the body's frame is gone already
    if (fail) {
      CHECK_THROWS_AS(task.get(), Custom);
    } else {
      CHECK(task.get() == 1);
    }
  }
}

TEST_CASE("the low-latency mode spins on both sides and still sleeps when idle", "[loop][submit][latency]") {
  LoopOptions options{.name = "lb-spin"};
  options.spin_before_sleep = std::chrono::microseconds(50);
  BackgroundLoop loop(options);
  loop.start();
  for (int i = 0; i < 200; ++i) {
    auto value = loop.submit([i] { return i; });
    require_settles(value);
    CHECK(value.get() == i);
  }
  std::this_thread::sleep_for(20ms);  // past the spin: the loop sleeps, and wakes on demand
  auto late = loop.submit([]() -> asio::awaitable<int> { co_return 5; });
  require_settles(late);
  CHECK(late.get() == 5);
}

namespace {

// An Asio operation that never completes: its initiation drops the handler, as a buggy
// third-party component might.
template <class Token>
auto async_never(Token&& token) {
  return asio::async_initiate<Token, void(boost::system::error_code)>([](auto handler) { (void)handler; }, token);
}

struct InitiationFailed : std::runtime_error {
  InitiationFailed() : std::runtime_error("initiation failed") {}
};

// An Asio operation whose initiation throws (say, std::bad_alloc making its state).
template <class Token>
auto async_throwing(Token&& token) {
  return asio::async_initiate<Token, void(boost::system::error_code)>(
      [](auto handler) {
        (void)handler;
        throw InitiationFailed();
      },
      token);
}

}  // namespace

TEST_CASE("a task whose awaited operation drops its handler settles instead of hanging", "[loop][submit][errors]") {
  std::atomic<int> errors{0};
  LoopOptions options{.name = "lb-dropped"};
  options.error_handler = [&](std::exception_ptr, std::string_view) { ++errors; };
  BackgroundLoop loop(options);
  loop.start();
  auto lost = loop.submit([]() -> asio::awaitable<int> {
    auto wait = async_never(asio::use_awaitable);
    co_await std::move(wait);
    co_return 1;
  });
  require_settles(lost);
  CHECK_THROWS_AS(lost.get(), TaskAbandoned);
  // The loop goes on, and its counts reconcile.
  CHECK(loop.submit([] { return 2; }).get() == 2);
  LoopStats stats = loop.stats();
  CHECK(stats.failed == 1);
  CHECK(stats.in_flight == 0);
  CHECK(stats.submitted == stats.completed + stats.failed + stats.cancelled + stats.rejected + stats.abandoned);
}

TEST_CASE("an operation whose initiation throws fails its task with that exception", "[loop][submit][errors]") {
  std::atomic<int> errors{0};
  LoopOptions options{.name = "lb-initthrow"};
  options.error_handler = [&](std::exception_ptr, std::string_view) { ++errors; };
  BackgroundLoop loop(options);
  loop.start();
  auto first_stretch = loop.submit([]() -> asio::awaitable<int> {
    auto op = async_throwing(asio::use_awaitable);
    co_await std::move(op);
    co_return 1;
  });
  auto later_stretch = loop.submit([]() -> asio::awaitable<int> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
    co_await timer.async_wait(asio::use_awaitable);
    auto op = async_throwing(asio::use_awaitable);
    co_await std::move(op);
    co_return 1;
  });
  require_settles(first_stretch);
  require_settles(later_stretch);
  CHECK_THROWS_AS(first_stretch.get(), InitiationFailed);
  CHECK_THROWS_AS(later_stretch.get(), InitiationFailed);
  CHECK(errors == 2);  // each is also reported: it escaped a handler on the loop
  CHECK(loop.submit([] { return 2; }).get() == 2);
  LoopStats stats = loop.stats();
  CHECK(stats.failed == 2);
  CHECK(stats.in_flight == 0);
}

TEST_CASE("a timeout too large for nanoseconds means no limit instead of none", "[loop][submit]") {
  BackgroundLoop loop({.name = "lb-huge-wait"});
  loop.start();
  // Each max() below overflows when converted to nanoseconds: it must still wait.
  auto later = [&] { return loop.submit([] { return add_later(20, 22); }); };
  auto a = later();
  CHECK(a.wait_for(std::chrono::seconds::max()) == std::future_status::ready);
  auto b = later();
  CHECK(b.wait_for(std::chrono::hours::max()) == std::future_status::ready);
  auto c = later();
  CHECK(c.wait_for(std::chrono::milliseconds::max()) == std::future_status::ready);
  auto d = later();
  CHECK(d.wait_for(std::chrono::nanoseconds::max()) == std::future_status::ready);
  auto e = later();
  CHECK(e.wait_for(std::chrono::duration<double>::max()) == std::future_status::ready);
  auto f = later();
  CHECK(f.cancel_and_wait(std::chrono::seconds::max()) == std::future_status::ready);
  auto g = later();
  CHECK(g.wait_until(std::chrono::time_point<std::chrono::steady_clock, std::chrono::seconds>::max()) ==
        std::future_status::ready);
  auto h = later();
  CHECK(h.wait_until(std::chrono::time_point<std::chrono::system_clock, std::chrono::hours>::max()) ==
        std::future_status::ready);
  CHECK(a.get() + b.get() + c.get() + d.get() + e.get() + g.get() + h.get() == 7 * 42);
  // A narrow Rep holds a short timeout that must stay short.
  Gate never;
  auto gated = loop.submit([&]() -> asio::awaitable<int> {
    while (!never.wait(0ms)) co_await add_later(0, 0);
    co_return 0;
  });
  CHECK(gated.wait_for(std::chrono::duration<int, std::milli>(30)) == std::future_status::timeout);
  CHECK(gated.wait_for(std::chrono::duration<short, std::micro>(100)) == std::future_status::timeout);
  never.open();
  CHECK(gated.get() == 0);
}

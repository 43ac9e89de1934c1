#include <loopbridge/bridge/host_call.hpp>

#include <loopbridge/bridge/run.hpp>
#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// A legacy object that only its owning thread may touch.
class ThreadBound {
public:
  int touch() {
    if (std::this_thread::get_id() != owner_) throw std::logic_error("touched from a foreign thread");
    return ++touches_;
  }

private:
  std::thread::id owner_ = std::this_thread::get_id();
  int touches_ = 0;
};

// Runs `depth` nested levels: each task calls back into the host, which runs the next
// level with run() from inside that call.
int nested(const LoopHandle& loop, ThreadBound& bound, int depth) {
  return run(
      loop,
      [&loop, &bound, depth]() -> asio::awaitable<int> {
        auto op = call_host([&loop, &bound, depth] {
          int touched = bound.touch();
          return depth > 1 ? nested(loop, bound, depth - 1) + touched : touched;
        });
        co_return co_await std::move(op);
      },
      10s);
}

}  // namespace

TEST_CASE("a task calls back into the host thread blocked in run on it", "[bridge][host]") {
  BackgroundLoop loop({.name = "lb-host-call"});
  loop.start();
  ThreadBound bound;  // owned by this (host) thread
  const auto host = std::this_thread::get_id();
  bool ran_on_host = run(
      loop,
      [&]() -> asio::awaitable<bool> {
        auto op = call_host([&] {
          bound.touch();
          return std::this_thread::get_id() == host;
        });
        co_return co_await std::move(op);
      },
      5s);
  CHECK(ran_on_host);
}

TEST_CASE("a host blocked in get serves its task's host calls", "[bridge][host]") {
  BackgroundLoop loop({.name = "lb-host-get"});
  loop.start();
  ThreadBound bound;
  auto task = loop.submit([&]() -> asio::awaitable<int> {
    // Calls reach a host only while it is blocked: give it time to get there (run() has
    // no such gap: it takes calls from the moment it submits).
    asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);
    co_await timer.async_wait(asio::use_awaitable);
    auto first = call_host([&] { return bound.touch(); });
    int a = co_await std::move(first);
    auto second = call_host([&] { return bound.touch(); });
    int b = co_await std::move(second);
    co_return a + b;
  });
  require_settles(task);  // a blocking wait: the calls run here, on the owning thread
  CHECK(task.get() == 3);
}

TEST_CASE("host calls nest four levels deep without deadlock", "[bridge][host]") {
  BackgroundLoop loop({.name = "lb-host-nest"});
  loop.start();
  ThreadBound bound;
  // Touches 1..4 summed: each level touches once, then descends.
  CHECK(nested(loop, bound, 4) == 1 + 2 + 3 + 4);
}

TEST_CASE("a host call's exception reaches the task with its type", "[bridge][host]") {
  BackgroundLoop loop({.name = "lb-host-exc"});
  loop.start();
  bool caught = run(
      loop,
      []() -> asio::awaitable<bool> {
        auto op = call_host([]() -> int { throw std::invalid_argument("host refused"); });
        try {
          co_await std::move(op);
        } catch (const std::invalid_argument&) {
          co_return true;
        }
        co_return false;
      },
      5s);
  CHECK(caught);
}

TEST_CASE("call_host fails at once when no host is waiting", "[bridge][host][errors]") {
  BackgroundLoop loop({.name = "lb-host-none"});
  loop.start();
  // The submitting host is busy (polling, not blocked in a wait) when the call comes.
  auto task = loop.submit([]() -> asio::awaitable<int> {
    auto op = call_host([] { return 1; });
    co_return co_await std::move(op);
  });
  REQUIRE(eventually([&] { return task.ready(); }));
  CHECK_THROWS_AS(task.get(), HostNotWaiting);

  // Submitted from a loop thread: there is no host to call.
  auto outer = loop.submit([&loop]() -> asio::awaitable<bool> {
    auto inner = loop.submit([]() -> asio::awaitable<int> {
      auto op = call_host([] { return 1; });
      co_return co_await std::move(op);
    });
    try {
      co_await inner.async_get();
    } catch (const HostNotWaiting&) {
      co_return true;
    }
    co_return false;
  });
  require_settles(outer);
  CHECK(outer.get());

  // The host gave up (deadline) before the task called back.
  std::atomic<bool> refused{false};
  std::atomic<bool> done{false};
  std::atomic<bool> host_left{false};
  CHECK_THROWS_AS(run(
                      loop,
                      [&]() -> asio::awaitable<void> {
                        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
                        boost::system::error_code ignored;
                        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
                        co_await asio::this_coro::reset_cancellation_state();
                        while (!host_left) {
                          timer.expires_after(1ms);
                          co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
                        }
                        try {
                          auto op = call_host([] { return 1; });
                          co_await std::move(op);
                        } catch (const HostNotWaiting&) {
                          refused = true;
                        }
                        done = true;
                      },
                      20ms, {.unwind_timeout = 0ms}),
                  Timeout);
  host_left = true;
  CHECK(eventually([&] { return done.load(); }));
  CHECK(refused);
}

TEST_CASE("a stop that drops a task keeps its frame until the host call using it has returned",
          "[bridge][host][stop]") {
  // The host function reads a local of the coroutine's frame after the stop dropped the
  // task (AddressSanitizer watches it).
  BackgroundLoop loop({.name = "lb-host-drop"});
  loop.start();
  std::atomic<bool> in_call{false};
  std::atomic<int> read{0};
  std::thread stopper([&] {
    eventually([&] { return in_call.load(); });
    loop.stop({.cancel_timeout = 5s, .drop_in_flight = true});
  });
  CHECK_THROWS_AS(run(loop,
                      [&]() -> asio::awaitable<int> {
                        std::vector<int> local(1000, 7);
                        auto op = call_host([&] {
                          in_call = true;
                          // Reads the frame only once the stop has dropped the task (counted it cancelled).
                          eventually([&] { return loop.stats().cancelled == 1; });
                          read = local[999];
                          return 1;
                        });
                        co_return co_await std::move(op);
                      },
                      10s),
                  TaskCancelled);
  stopper.join();
  CHECK(read == 7);
}

TEST_CASE("stop from inside a host call requests the stop and returns at once", "[bridge][host][stop]") {
  // Joining there would wait for the stop, which waits for this very call to return.
  BackgroundLoop loop({.name = "lb-host-stop"});
  loop.start();
  std::atomic<int> joined_inside{-1};
  const auto t0 = std::chrono::steady_clock::now();
  try {
    run(loop,
        [&]() -> asio::awaitable<int> {
          auto op = call_host([&] {
            joined_inside = loop.stop().joined ? 1 : 0;
            return 1;
          });
          co_return co_await std::move(op);
        },
        10s);
  } catch (const TaskCancelled&) {
    // The stop cancelled the task once the call had returned.
  }
  CHECK(joined_inside == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(loop.stop().joined);
}

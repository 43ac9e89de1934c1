#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"
#include "support/line_server.hpp"

#include <stdexcept>
#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

struct RunHereHookFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

TEST_CASE("run_here runs hooks and tasks on the calling thread until another thread stops it", "[loop][run-here]") {
  BackgroundLoop loop({.name = "lb-here"});
  const auto caller = std::this_thread::get_id();
  std::thread::id start_hook_thread, stop_hook_thread, task_thread;
  BackgroundLoop* current_in_hook = nullptr;
  int coroutine_value = 0;
  ShutdownReport stop_report;
  bool stop_hook_done_when_stop_returned = false;
  std::thread host;

  loop.on_start_stop(
      [&]() -> asio::awaitable<void> {
        start_hook_thread = std::this_thread::get_id();
        current_in_hook = current_loop();
        // A host thread made here may submit at once: the loop accepts work while it starts.
        host = std::thread([&] {
          auto where = loop.submit([] { return std::this_thread::get_id(); });
          auto value = loop.submit([]() -> asio::awaitable<int> {
            co_await sleep_for(5ms);
            co_return 42;
          });
          if (where.wait_for(kDeadline) == std::future_status::ready) task_thread = where.get();
          if (value.wait_for(kDeadline) == std::future_status::ready) coroutine_value = value.get();
          stop_report = loop.stop();
          stop_hook_done_when_stop_returned = stop_hook_thread == caller;
        });
        co_return;
      },
      [&]() -> asio::awaitable<void> {
        co_await sleep_for(1ms);
        stop_hook_thread = std::this_thread::get_id();
      });

  ShutdownReport report = loop.run_here();
  host.join();
  CHECK(start_hook_thread == caller);
  CHECK(current_in_hook == &loop);
  CHECK(task_thread == caller);
  CHECK(coroutine_value == 42);
  CHECK(stop_hook_done_when_stop_returned);
  CHECK(stop_report.joined);
  CHECK(report.joined);
  CHECK(report.completed == 2);
  CHECK(loop.state() == LoopState::stopped);
  CHECK(current_loop() == nullptr);  // the caller is a host thread again
}

TEST_CASE("cancel_all and cancel from other threads reach the tasks of a run_here loop", "[loop][run-here][cancel]") {
  BackgroundLoop loop({.name = "lb-here-cancel"});
  std::size_t cancelled_by_all = 0;
  bool single_cancelled = false;
  std::thread host;
  loop.on_start([&]() -> asio::awaitable<void> {
    host = std::thread([&] {
      auto a = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
      auto b = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
      auto c = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
      c.cancel();
      if (c.wait_for(kDeadline) == std::future_status::ready) {
        try {
          c.get();
        } catch (const TaskCancelled&) {
          single_cancelled = true;
        }
      }
      auto all = loop.cancel_all();
      if (all.wait_for(kDeadline) == std::future_status::ready) cancelled_by_all = all.get();
      loop.stop();
    });
    co_return;
  });
  ShutdownReport report = loop.run_here();
  host.join();
  CHECK(single_cancelled);
  CHECK(cancelled_by_all == 2);
  CHECK(report.cancelled == 3);
}

TEST_CASE("a blocking wait on the run_here thread throws DeadlockError", "[loop][run-here][deadlock]") {
  BackgroundLoop loop({.name = "lb-here-lock"});
  bool deadlock = false;
  loop.on_start([&]() -> asio::awaitable<void> {
    auto inner = loop.submit([] { return 1; });
    try {
      inner.wait();
    } catch (const DeadlockError&) {
      deadlock = true;
    }
    loop.stop();  // on the loop thread: requests the stop
    co_return;
  });
  ShutdownReport report = loop.run_here();
  CHECK(deadlock);
  CHECK(report.joined);
}

TEST_CASE("stop from a task on the run_here thread makes run_here return", "[loop][run-here][stop]") {
  BackgroundLoop loop({.name = "lb-here-self"});
  bool joined_from_inside = true;
  loop.on_start([&]() -> asio::awaitable<void> {
    loop.post([&]() -> asio::awaitable<void> {
      co_await sleep_for(2ms);
      joined_from_inside = loop.stop().joined;
    });
    co_return;
  });
  auto begin = std::chrono::steady_clock::now();
  ShutdownReport report = loop.run_here();
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  CHECK_FALSE(joined_from_inside);
  CHECK(report.completed == 1);
  CHECK(loop.stop().joined);  // the owner's later stop finds it ended
}

TEST_CASE("a throwing on_start hook makes run_here throw it after undoing the hooks that succeeded",
          "[loop][run-here][hooks]") {
  BackgroundLoop loop({.name = "lb-here-fail"});
  bool closed = false;
  loop.on_start_stop([]() -> asio::awaitable<void> { co_return; },
                     [&]() -> asio::awaitable<void> {
                       closed = true;
                       co_return;
                     });
  loop.on_start([]() -> asio::awaitable<void> {
    co_await sleep_for(1ms);
    throw RunHereHookFailed("cannot open");
  });
  CHECK_THROWS_AS(loop.run_here(), RunHereHookFailed);
  CHECK(closed);
  CHECK(loop.state() == LoopState::stopped);
  CHECK(current_loop() == nullptr);
}

TEST_CASE("run_here refuses thread options and started loops and loop threads", "[loop][run-here][bad-input]") {
  BackgroundLoop with_stack({.name = "lb-here-stack", .stack_size = 1 << 20});
  CHECK_THROWS_AS(with_stack.run_here(), InvalidArgument);
  CHECK(with_stack.state() == LoopState::created);

  BackgroundLoop started({.name = "lb-here-twice"});
  started.start();
  CHECK_THROWS_AS(started.run_here(), InvalidState);

  BackgroundLoop other({.name = "lb-here-other"});
  auto nested = started.submit([&] {
    try {
      other.run_here();
    } catch (const DeadlockError&) {
      return true;
    }
    return false;
  });
  require_settles(nested);
  CHECK(nested.get());
  CHECK(other.state() == LoopState::created);
  started.stop();
}

TEST_CASE("run_here drives a borrowed io_context on the calling thread", "[loop][run-here][borrowed]") {
  asio::io_context io;
  LineServer server(io);
  BackgroundLoop loop(io, {.name = "lb-here-io"});
  std::string reply;
  std::thread client;
  loop.on_start([&]() -> asio::awaitable<void> {
    client = std::thread([&] {
      reply = fetch_line(server.port());
      loop.stop();
    });
    co_return;
  });
  ShutdownReport report = loop.run_here();
  client.join();
  CHECK(report.joined);
  CHECK(reply == "served by " + this_thread_name());
  CHECK(io.stopped());
}

TEST_CASE("a stop from another thread during run_here's on_start hooks waits for the start and joins",
          "[loop][run-here][stop]") {
  // The stop's budget counts the start it waits for, though the stop moves the loop's state.
  BackgroundLoop loop({.name = "lb-here-slow"});
  Gate hook_entered;
  loop.on_start([&]() -> asio::awaitable<void> {
    hook_entered.open();
    co_await sleep_for(3s);  // longer than the stop's own deadlines and margin
  });
  std::thread runner([&] { (void)loop.run_here(); });
  REQUIRE(hook_entered.wait());
  ShutdownReport report = loop.stop({.cancel_timeout = 100ms, .hook_timeout = 100ms});
  CHECK(report.joined);
  runner.join();
  CHECK(loop.unhandled_errors() == 0);  // no "did not end within the stop's deadlines"
}

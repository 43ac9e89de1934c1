#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"
#include "support/error_log.hpp"
#include "support/line_server.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// Ignores the cancel, then sleeps for `after_cancel` where no cancel reaches it. Records
// whether its frame ended and on which thread.
struct StubbornProbe {
  std::atomic<bool> finished{false};
  std::atomic<bool> destroyed{false};
  std::string finished_on;  // written by the frame, read after it ended
};

// Runs what is ready in `io` and tells whether none of it was left by the loop. Exact on
// epoll; with io_uring, Asio's own service may have queued a step of its own (submitting its
// ring), which says nothing about the loop, so there only the running is checked.
bool nothing_left_ready(asio::io_context& io, IoBackend backend) {
  io.restart();
  const std::size_t ran = io.poll();
  return backend == IoBackend::io_uring || ran == 0;
}

asio::awaitable<void> stubborn_task(StubbornProbe* probe, std::chrono::steady_clock::duration after_cancel) {
  struct Witness {
    StubbornProbe* probe;
    ~Witness() { probe->destroyed = true; }
  } witness{probe};
  try {
    co_await sleep_for(std::chrono::hours(1));
  } catch (const boost::system::system_error&) {
  }
  co_await asio::this_coro::reset_cancellation_state();
  co_await sleep_for(after_cancel);
  probe->finished_on = this_thread_name();
  probe->finished = true;
}

asio::awaitable<void> parked_until_destroyed(std::atomic<bool>* destroyed) {
  struct Witness {
    std::atomic<bool>* destroyed;
    ~Witness() { *destroyed = true; }
  } witness{destroyed};
  co_await sleep_for(std::chrono::hours(1));
}

}  // namespace

TEST_CASE("a component made on a borrowed io_context before start is served by the loop and then by its owner again",
          "[loop][borrowed]") {
  asio::io_context io;
  LineServer server(io);  // a third party, created against the plain io_context first
  {
    BackgroundLoop loop(io, {.name = "lb-borrowed"});
    std::atomic<int> hooks{0};
    loop.on_start_stop([&]() -> asio::awaitable<void> { co_await sleep_for(1ms); ++hooks; },
                       // Returns without suspending: the stop sequence's last step is then a
                       // post, which must not be left behind in the io_context.
                       [&]() -> asio::awaitable<void> {
                         ++hooks;
                         co_return;
                       });
    loop.start();
    CHECK(fetch_line(server.port()) == "served by lb-borrowed");

    auto sleeper = loop.submit([] { return sleep_for(std::chrono::hours(1)); });
    auto value = loop.submit([] { return 7; });
    require_settles(value);
    CHECK(value.get() == 7);

    ShutdownReport report = loop.stop();
    CHECK(report.joined);
    REQUIRE(sleeper.ready());
    CHECK_THROWS_AS(sleeper.get(), TaskCancelled);
    CHECK(hooks == 2);
    CHECK(report.submitted == report.completed + report.failed + report.cancelled + report.abandoned + report.rejected);
    CHECK(io.stopped());  // left to its owner, who restarts it
  }

  // The owner runs it on a thread of its own; the component never noticed the loop. (Its
  // own completions may still be pending: with io_uring the reply's write completes later.)
  io.restart();
  std::thread owner([&] {
    ::pthread_setname_np(::pthread_self(), "lb-owner");
    io.run();
  });
  CHECK(fetch_line(server.port()) == "served by lb-owner");
  asio::post(io, [&] { server.close(); });  // its last work: run() returns
  CHECK(eventually([&] { return io.stopped(); }));
  owner.join();
}

TEST_CASE("stop leaves nothing of the loop's behind in a borrowed io_context", "[loop][borrowed][stop]") {
  asio::io_context io;
  LineServer server(io);
  int closed = 0;
  IoBackend backend{};
  {
    BackgroundLoop loop(io, {.name = "lb-b-clean"});
    backend = loop.backend();
    // Hooks that finish without suspending: the stop sequence then ends in the same turn it
    // began, and co_spawn posts its last step.
    loop.on_start_stop([]() -> asio::awaitable<void> { co_return; },
                       [&]() -> asio::awaitable<void> {
                         ++closed;
                         co_return;
                       });
    loop.start();
    auto done = loop.submit([] { return sleep_for(1ms); });
    require_settles(done);
    CHECK(loop.stop().joined);
  }
  CHECK(closed == 1);
  CHECK(nothing_left_ready(io, backend));
  CHECK(fetch_line(server.port(), 50ms).empty());  // nobody runs it now: no answer
  io.restart();
  std::thread owner([&] { io.run(); });
  CHECK(fetch_line(server.port()).starts_with("served by"));
  asio::post(io, [&] { server.close(); });
  owner.join();
}

TEST_CASE("a task abandoned on a borrowed io_context is reported and its frame dies with the io_context",
          "[loop][borrowed][stop]") {
  auto io = std::make_unique<asio::io_context>();
  StubbornProbe probe;
  ErrorLog errors;
  {
    BackgroundLoop loop(*io, {.name = "lb-b-abandon", .error_handler = errors.handler()});
    loop.start();
    auto task = loop.submit([&] { return stubborn_task(&probe, std::chrono::hours(1)); });
    REQUIRE(eventually([&] { return loop.queue_depth() == 0; }));
    ShutdownReport report = loop.stop({.cancel_timeout = 50ms});
    REQUIRE(task.ready());
    CHECK_THROWS_AS(task.get(), TaskAbandoned);
    CHECK(report.abandoned == 1);
    CHECK(report.joined);
    CHECK(errors.mentions("suspended in the borrowed io_context"));
  }
  // The loop is gone; the frame still waits in the io_context, which only its owner can end.
  CHECK_FALSE(probe.destroyed);
  io.reset();
  CHECK(probe.destroyed);
  CHECK_FALSE(probe.finished);
}

TEST_CASE("a coroutine a task left on a borrowed io_context dies with the io_context after the loop is gone",
          "[loop][borrowed][stop]") {
  auto io = std::make_unique<asio::io_context>();
  std::atomic<bool> destroyed{false};
  {
    BackgroundLoop loop(*io, {.name = "lb-b-child"});
    loop.start();
    // The child runs on its task's executor and outlives the task: nothing of the loop
    // tracks it, so nothing of the loop keeps the loop alive for it.
    loop.submit([&]() -> asio::awaitable<void> {
          asio::any_io_executor executor = co_await asio::this_coro::executor;
          asio::co_spawn(executor, parked_until_destroyed(&destroyed), asio::detached);
        })
        .get();
    loop.stop();
  }
  CHECK_FALSE(destroyed);
  // Destroying the child's frame makes Asio post through the task's executor, with the loop
  // long gone (AddressSanitizer checks that nothing reads it).
  io.reset();
  CHECK(destroyed);
}

TEST_CASE("a coroutine a task left on a borrowed io_context finishes on its owner's thread after the loop is gone",
          "[loop][borrowed][stop]") {
  asio::io_context io;
  std::atomic<bool> finished{false};
  {
    BackgroundLoop loop(io, {.name = "lb-b-child-run"});
    loop.start();
    loop.submit([&]() -> asio::awaitable<void> {
          asio::any_io_executor executor = co_await asio::this_coro::executor;
          asio::co_spawn(
              executor,
              [&finished]() -> asio::awaitable<void> {
                co_await sleep_for(std::chrono::milliseconds(50));
                finished = true;
              },
              asio::detached);
        })
        .get();
    loop.stop();
  }
  CHECK_FALSE(finished);
  // Its resumption passes through the task's executor, which reaches the loop's shared
  // state: the task keeps it alive (AddressSanitizer checks the reads).
  io.restart();
  io.run_for(std::chrono::seconds(5));
  CHECK(finished);
}

TEST_CASE("a task abandoned on a borrowed io_context finishes on its owner's thread when it runs again",
          "[loop][borrowed][stop]") {
  asio::io_context io;
  StubbornProbe probe;
  ErrorLog errors;
  {
    BackgroundLoop loop(io, {.name = "lb-b-resume", .error_handler = errors.handler()});
    loop.start();
    auto task = loop.submit([&] { return stubborn_task(&probe, 200ms); });
    REQUIRE(eventually([&] { return loop.queue_depth() == 0; }));
    loop.stop({.cancel_timeout = 20ms});
    CHECK_THROWS_AS(task.get(), TaskAbandoned);
  }
  CHECK_FALSE(probe.finished);
  io.restart();
  std::thread owner([&] {
    ::pthread_setname_np(::pthread_self(), "lb-owner");
    io.run();  // returns when the frame has finished: it was the last work
  });
  CHECK(eventually([&] { return io.stopped(); }));
  owner.join();
  CHECK(probe.finished);
  CHECK(probe.destroyed);
  CHECK(probe.finished_on == "lb-owner");
}

TEST_CASE("submissions racing stop on a borrowed io_context all settle and leave no live wake-up behind",
          "[loop][borrowed][stop]") {
  for (int round = 0; round < 10; ++round) {
    auto io = std::make_unique<asio::io_context>();
    std::vector<TaskHandle<int>> handles;
    {
      BackgroundLoop loop(*io, {.name = "lb-b-race"});
      loop.start();
      std::mutex m;
      std::vector<std::thread> producers;
      for (int t = 0; t < 3; ++t) {
        producers.emplace_back([&] {
          for (int i = 0; i < 200; ++i) {
            auto h = loop.submit([] { return 1; });
            std::lock_guard lock(m);
            handles.push_back(std::move(h));
          }
        });
      }
      // Each round the stop lands at another point of the 600 submissions: after none of them,
      // after 60, after 120, and so on, with the producers still going.
      const std::size_t made_before_stop = static_cast<std::size_t>(round) * 60;
      CHECK(eventually([&] {
        std::lock_guard lock(m);
        return handles.size() >= made_before_stop;
      }));
      loop.stop();
      for (auto& p : producers) p.join();
    }
    for (auto& h : handles) REQUIRE(h.ready());
    // A producer that found the queue empty just before the stop closed it posted a wake-up
    // the loop never ran. The owner's next run runs it, long after the loop has gone: it
    // must find nothing to do and touch nothing freed.
    handles.clear();
    io->restart();
    io->poll();
    io.reset();
  }
}

TEST_CASE("drop_in_flight on a borrowed io_context cancels and unwinds instead of dropping",
          "[loop][borrowed][stop]") {
  asio::io_context io;
  std::atomic<bool> unwound{false};
  IoBackend backend{};
  {
    BackgroundLoop loop(io, {.name = "lb-b-drop"});
    backend = loop.backend();
    loop.start();
    auto parked = loop.submit([&]() -> asio::awaitable<void> {
      try {
        co_await sleep_for(std::chrono::hours(1));
      } catch (const boost::system::system_error&) {
        unwound = true;  // a dropped frame would never get here
        throw;
      }
    });
    REQUIRE(eventually([&] { return loop.queue_depth() == 0; }));
    ShutdownReport report = loop.stop({.drop_in_flight = true});
    REQUIRE(parked.ready());
    CHECK_THROWS_AS(parked.get(), TaskCancelled);
    CHECK(report.cancelled == 1);
    CHECK(report.abandoned == 0);
  }
  CHECK(unwound);  // on the loop thread, before stop returned: nothing is left for the owner
  CHECK(nothing_left_ready(io, backend));
}

#include <loopbridge/loop/background_loop.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"
#include "support/error_log.hpp"

#include <boost/asio/post.hpp>

#include <thread>

// What the owner of a borrowed io_context must not do, and what the loop does about it.

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("start refuses a borrowed io_context that is stopped or that the calling thread runs",
          "[loop][borrowed][bad-input]") {
  asio::io_context stopped_io;
  stopped_io.stop();
  BackgroundLoop on_stopped(stopped_io, {.name = "lb-stopped-io"});
  CHECK_THROWS_AS(on_stopped.start(), InvalidState);
  CHECK(on_stopped.state() == LoopState::stopped);
  auto begin = std::chrono::steady_clock::now();
  CHECK(on_stopped.stop().submitted == 0);
  CHECK(std::chrono::steady_clock::now() - begin < 1s);

  asio::io_context io;
  BackgroundLoop inside(io, {.name = "lb-inside-io"});
  bool refused = false;
  asio::post(io, [&] {
    try {
      inside.start();
    } catch (const InvalidState&) {
      refused = true;
    }
  });
  io.run();  // runs the post, then runs out of work
  CHECK(refused);
  CHECK(inside.state() == LoopState::stopped);
}

TEST_CASE("one io_context is driven by one loop at a time", "[loop][borrowed][bad-input]") {
  asio::io_context io;
  BackgroundLoop first(io, {.name = "lb-first"});
  BackgroundLoop second(io, {.name = "lb-second"});
  first.start();
  CHECK_THROWS_AS(second.start(), InvalidState);
  first.stop();

  // Once the first loop has stopped and the owner restarted the io_context, another loop
  // may drive it.
  io.restart();
  BackgroundLoop third(io, {.name = "lb-third"});
  third.start();
  auto on_loop = third.submit([&] { return third.on_loop_thread(); });
  require_settles(on_loop);
  CHECK(on_loop.get());
  CHECK(third.stop().joined);
}

TEST_CASE("another thread running the borrowed io_context is reported and the loop's work stays on its thread",
          "[loop][borrowed]") {
  asio::io_context io;
  ErrorLog errors;
  BackgroundLoop loop(io, {.name = "lb-two-runners", .error_handler = errors.handler()});
  loop.start();
  std::thread intruder([&] { io.run(); });  // the misuse
  TaskHandle<bool> task;
  {
    // While the loop thread is busy, the wake-up of the next submission can only be run by
    // the intruder: it must report it and hand it back.
    LoopBlocker busy(loop);
    task = loop.submit([&] { return loop.on_loop_thread(); });
    CHECK(eventually([&] { return loop.unhandled_errors() > 0; }));
  }
  require_settles(task);
  CHECK(task.get());  // it ran on the loop thread all the same
  CHECK(errors.mentions("only the loop's thread may run"));
  ShutdownReport report = loop.stop();  // stops the io_context: the intruder's run() returns too
  CHECK(report.joined);
  intruder.join();
}

TEST_CASE("the owner stopping its io_context while the loop runs is reported and the loop goes on",
          "[loop][borrowed]") {
  asio::io_context io;
  ErrorLog errors;
  BackgroundLoop loop(io, {.name = "lb-b-stopped", .error_handler = errors.handler()});
  loop.start();
  auto sleeper = loop.submit([] { return sleep_for(20ms); });
  io.stop();  // the misuse: loop.stop() is the way to stop it
  REQUIRE(eventually([&] { return loop.unhandled_errors() > 0; }));
  CHECK(errors.mentions("stop the loop instead"));
  require_settles(sleeper);
  CHECK_NOTHROW(sleeper.get());
  auto after = loop.submit([] { return 5; });
  require_settles(after);
  CHECK(after.get() == 5);
  CHECK(loop.stop().joined);
}

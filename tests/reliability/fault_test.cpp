// Fault injection: tasks, hooks, error handlers, callbacks, offloaded functions and result
// types that throw, and host threads that die while their tasks still need them. After each
// fault the loop must go on, and its counts must still say what the handles say.

#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>

#include "figures.hpp"
#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <mutex>
#include <stdexcept>
#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

bool reconciles(const ShutdownReport& r) {
  return r.submitted == r.completed + r.failed + r.cancelled + r.abandoned + r.rejected;
}

// Records what reached an error handler.
struct Received {
  std::mutex mutex;
  std::vector<std::string> contexts;
  void add(std::string_view context) {
    std::lock_guard lock(mutex);
    contexts.emplace_back(context);
  }
  std::size_t count(std::string_view context) {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(std::count(contexts.begin(), contexts.end(), context));
  }
};

// A value whose move constructor throws on the n-th move after arm(n) (counted along the
// moves that carry one result from the task to the host), noting whether that was on a
// loop thread.
struct Fragile {
  static inline std::atomic<int> moves_left{0};
  static inline std::atomic<bool> threw_on_loop{false};
  static void arm(int n) {
    moves_left = n;
    threw_on_loop = false;
  }
  Fragile() = default;
  Fragile(Fragile&&) {
    if (moves_left.fetch_sub(1) == 1) {
      threw_on_loop = current_loop() != nullptr;
      throw std::length_error("move failed");
    }
  }
  Fragile& operator=(Fragile&&) = delete;
};

// A callable that counts its live copies and whose copy constructor throws.
struct CopyBomb {
  static inline std::atomic<int> live{0};
  CopyBomb() { ++live; }
  CopyBomb(const CopyBomb&) {
    throw std::bad_alloc();  // as a copy that runs out of memory would
  }
  CopyBomb(CopyBomb&&) noexcept { ++live; }
  ~CopyBomb() { --live; }
  int operator()() const { return 1; }
};

/// A CopyBomb for post(), which takes only work that returns nothing.
struct PostedCopyBomb : CopyBomb {
  void operator()() const {}
};

}  // namespace

TEST_CASE("an error handler that throws changes nothing: every error is still counted", "[reliability][fault]") {
  std::atomic<int> calls{0};
  LoopOptions options{.name = "lb-bad-handler"};
  options.error_handler = [&](std::exception_ptr, std::string_view) {
    ++calls;
    throw std::runtime_error("the handler itself fails");
  };
  BackgroundLoop loop(options);
  loop.start();
  loop.post([] { throw std::runtime_error("posted"); });
  loop.post([] { throw 42; });  // not a std::exception
  loop.post([]() -> asio::awaitable<void> {
    co_await sleep_for(1ms);
    throw std::runtime_error("posted coroutine");
  });
  REQUIRE(eventually([&] { return loop.unhandled_errors() == 3; }));
  auto still = loop.submit([] { return 5; });
  require_settles(still);
  CHECK(still.get() == 5);
  ShutdownReport report = loop.stop();
  CHECK(calls == 3);
  CHECK(report.failed == 3);
  CHECK(report.completed == 1);
  CHECK(reconciles(report));
  record_figure("faults", "error handler throws", 3);
}

TEST_CASE("a task's non-standard exception reaches its handle with its type", "[reliability][fault]") {
  BackgroundLoop loop({.name = "lb-throw-int"});
  loop.start();
  auto callable = loop.submit([]() -> int { throw 42; });
  auto coroutine = loop.submit([]() -> asio::awaitable<int> {
    co_await sleep_for(1ms);
    throw std::string("not an exception class");
  });
  require_settles(callable);
  require_settles(coroutine);
  CHECK_THROWS_AS(callable.get(), int);
  CHECK_THROWS_AS(coroutine.get(), std::string);
  ShutdownReport report = loop.stop();
  CHECK(report.failed == 2);
  CHECK(reconciles(report));
  record_figure("faults", "non-standard exceptions from tasks", 2);
}

TEST_CASE("a task that throws while being cancelled is reported and settles as cancelled", "[reliability][fault]") {
  Received received;
  LoopOptions options{.name = "lb-throw-cancel"};
  options.error_handler = [&](std::exception_ptr, std::string_view context) { received.add(context); };
  BackgroundLoop loop(options);
  loop.start();
  std::atomic<bool> waiting{false};
  auto task = loop.submit([&]() -> asio::awaitable<int> {
    try {
      waiting = true;
      co_await sleep_for(std::chrono::hours(1));
    } catch (const boost::system::system_error&) {
      throw std::logic_error("cleanup failed during cancel");
    }
    co_return 1;
  });
  REQUIRE(eventually([&] { return waiting.load(); }));
  task.cancel();
  require_settles(task);
  CHECK_THROWS_AS(task.get(), TaskCancelled);
  CHECK(eventually([&] { return received.count("a task being cancelled") == 1; }));
  ShutdownReport report = loop.stop();
  CHECK(report.cancelled == 1);
  CHECK(reconciles(report));
  record_figure("faults", "task throws while being cancelled", 1);
}

TEST_CASE("a result whose move throws settles its handle with that error and the counts agree",
          "[reliability][fault]") {
  // Whichever move throws, the loop's count must say what the loop saw: a move that throws
  // on the loop thread fails the task; one that throws on the host, in get(), is the
  // host's own failure after the task completed.
  int faults = 0;
  for (int throw_on_move = 1; throw_on_move <= 6; ++throw_on_move) {
    for (bool coroutine : {false, true}) {
      INFO("move " << throw_on_move << (coroutine ? " of a coroutine's result" : " of a callable's result"));
      BackgroundLoop loop({.name = "lb-fragile"});
      loop.start();
      Fragile::arm(throw_on_move);
      TaskHandle<Fragile> task = coroutine ? loop.submit([]() -> asio::awaitable<Fragile> {
        co_await sleep_for(0ms);
        co_return Fragile();
      })
                                           : loop.submit([] { return Fragile(); });
      require_settles(task);
      bool threw = false;
      try {
        [[maybe_unused]] Fragile value = task.get();
      } catch (const std::length_error&) {
        threw = true;
        ++faults;
      }
      ShutdownReport report = loop.stop();
      CHECK(reconciles(report));
      const bool failed_on_loop = threw && Fragile::threw_on_loop;
      CHECK(report.failed == (failed_on_loop ? 1u : 0u));
      CHECK(report.completed == (failed_on_loop ? 0u : 1u));
    }
  }
  record_figure("faults", "result moves that throw", static_cast<std::uint64_t>(faults));
}

TEST_CASE("a callable whose copy throws at submission leaves nothing behind", "[reliability][fault]") {
  BackgroundLoop loop({.name = "lb-copy-bomb"});
  loop.start();
  {
    const CopyBomb bomb;
    const PostedCopyBomb posted_bomb;
    CHECK_THROWS_AS(loop.submit(bomb), std::bad_alloc);
    CHECK_THROWS_AS(loop.post(posted_bomb), std::bad_alloc);
    CHECK(CopyBomb::live == 2);  // only `bomb` and `posted_bomb` themselves
  }
  auto still = loop.submit([] { return 2; });
  require_settles(still);
  CHECK(still.get() == 2);
  ShutdownReport report = loop.stop();
  CHECK(report.submitted == 1);
  CHECK(reconciles(report));
  CHECK(CopyBomb::live == 0);
  record_figure("faults", "callable copies that throw at submission", 2);
}

TEST_CASE("an on_settled callback that throws reaches the error handler and the loop goes on",
          "[reliability][fault]") {
  Received received;
  LoopOptions options{.name = "lb-bad-cb"};
  options.error_handler = [&](std::exception_ptr, std::string_view context) { received.add(context); };
  BackgroundLoop loop(std::move(options));
  loop.start();
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; ++i) {
    loop.submit([]() -> asio::awaitable<int> {
          co_await sleep_for(1ms);
          co_return 1;
        })
        .on_settled([&](TaskHandle<int>) {
          ++ran;
          throw std::runtime_error("callback failed");
        });
  }
  REQUIRE(eventually([&] { return received.count("on_settled callback") == 3; }));
  CHECK(ran == 3);
  CHECK(loop.unhandled_errors() == 3);
  auto still = loop.submit([] { return 3; });
  require_settles(still);
  CHECK(still.get() == 3);
  ShutdownReport report = loop.stop();
  CHECK(report.completed == 4);
  CHECK(reconciles(report));
  record_figure("faults", "on_settled callbacks that throw", 3);
}

TEST_CASE("an offloaded function that throws after its task gave up on it harms nothing", "[reliability][fault]") {
  {
    BackgroundLoop loop({.name = "lb-late-throw"});
    loop.start();
    Gate release;
    std::atomic<bool> started{false};
    std::atomic<bool> threw{false};
    auto task = loop.submit([&]() -> asio::awaitable<int> {
      auto op = to_thread(
          [&] {
            started = true;
            release.wait();
            threw = true;
            throw std::runtime_error("nobody is listening");
            return 1;
          },
          {.abandon_on_cancel = true});
      co_return co_await std::move(op);
    });
    REQUIRE(eventually([&] { return started.load(); }));
    task.cancel();
    require_settles(task);
    CHECK_THROWS_AS(task.get(), TaskCancelled);
    release.open();
    REQUIRE(eventually([&] { return threw.load(); }));
    auto still = loop.submit([] { return 4; });
    require_settles(still);
    CHECK(still.get() == 4);
    ShutdownReport report = loop.stop();
    CHECK(report.cancelled == 1);
    CHECK(report.abandoned_workers == 0);
    CHECK(reconciles(report));
  }
  // Neither the loop thread nor its worker ("lb-late-throw-w") is left.
  CHECK(eventually([&] {
    auto names = thread_names();
    return std::none_of(names.begin(), names.end(), [](const std::string& n) { return n.rfind("lb-late-thr", 0) == 0; });
  }));
  record_figure("faults", "offloaded functions that throw after their task left", 1);
}

TEST_CASE("an on_stop hook that throws at destruction reaches the error handler", "[reliability][fault]") {
  // No report comes back from a destructor: what a hook threw must go to the error handler
  // (LoopOptions::error_handler promises it).
  Received received;
  {
    LoopOptions options{.name = "lb-dtor-hook"};
    options.error_handler = [&](std::exception_ptr, std::string_view context) { received.add(context); };
    BackgroundLoop loop(options);
    loop.on_stop([]() -> asio::awaitable<void> {
      throw std::runtime_error("close failed");
      co_return;
    });
    loop.start();
  }
  std::lock_guard lock(received.mutex);
  INFO("error handler contexts: " << received.contexts.size());
  CHECK(received.contexts.size() == 1);
  record_figure("faults", "on_stop hooks that throw at destruction", 1);
}

TEST_CASE("a host thread that dies while its task still needs it does not wedge the loop", "[reliability][fault]") {
  BackgroundLoop loop({.name = "lb-host-dies"});
  loop.start();
  TaskHandle<int> orphan;
  std::atomic<bool> died{false};
  std::thread host([&] {
    try {
      // A task that will call back into this thread once it has gone...
      orphan = loop.submit([]() -> asio::awaitable<int> {
        co_await sleep_for(30ms);
        auto op = call_host([] { return 1; });
        co_return co_await std::move(op);
      });
      // ...and a blocking call whose failure ends the thread.
      run(loop, []() -> int { throw std::runtime_error("request failed"); }, 5s);
    } catch (const std::runtime_error&) {
      died = true;
    }
  });
  host.join();
  REQUIRE(died);
  require_settles(orphan);
  CHECK_THROWS_AS(orphan.get(), HostNotWaiting);

  // A host blocked in get() whose host call throws: the task gets the error, the host's
  // wait rethrows it, the thread ends; the loop serves the next caller.
  std::atomic<bool> second_died{false};
  std::thread second([&] {
    try {
      run(loop,
          []() -> asio::awaitable<int> {
            auto op = call_host([]() -> int { throw std::domain_error("host state broken"); });
            co_return co_await std::move(op);
          },
          5s);
    } catch (const std::domain_error&) {
      second_died = true;
    }
  });
  second.join();
  CHECK(second_died);
  CHECK(run(loop, [] { return 6; }, 5s) == 6);
  auto begin = std::chrono::steady_clock::now();
  ShutdownReport report = loop.stop();
  CHECK(std::chrono::steady_clock::now() - begin < 1s);
  CHECK(report.failed == 3);
  CHECK(report.completed == 1);
  CHECK(reconciles(report));
  record_figure("faults", "host threads that die with tasks outstanding", 2);
}

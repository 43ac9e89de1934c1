#include <loopbridge/bridge/to_thread.hpp>

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"
#include "support/threads.hpp"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("to_thread runs blocking work on a worker and resumes on the loop thread", "[bridge][to_thread]") {
  BackgroundLoop loop({.name = "lb-offload"});
  loop.start();
  auto task = loop.submit([&]() -> asio::awaitable<bool> {
    auto loop_thread = std::this_thread::get_id();
    auto op = to_thread([loop_thread] {
      std::this_thread::sleep_for(5ms);  // stands for the blocking call: not a sync point
      return std::this_thread::get_id() != loop_thread && current_loop() == nullptr;
    });
    bool on_worker = co_await std::move(op);
    co_return on_worker && std::this_thread::get_id() == loop_thread;
  });
  require_settles(task);
  CHECK(task.get());
}

TEST_CASE("to_thread carries the function's exception back to the coroutine", "[bridge][to_thread]") {
  BackgroundLoop loop({.name = "lb-offload-exc"});
  loop.start();
  auto task = loop.submit([]() -> asio::awaitable<int> {
    auto op = to_thread([]() -> int { throw std::overflow_error("blocking call failed"); });
    co_return co_await std::move(op);
  });
  require_settles(task);
  CHECK_THROWS_AS(task.get(), std::overflow_error);
}

TEST_CASE("the worker pool is bounded by worker_threads", "[bridge][to_thread]") {
  LoopOptions options{.name = "lb-offload-pool"};
  options.worker_threads = 2;
  BackgroundLoop loop(options);
  loop.start();
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::vector<TaskHandle<void>> tasks;
  for (int i = 0; i < 6; ++i) {
    tasks.push_back(loop.submit([&]() -> asio::awaitable<void> {
      auto op = to_thread([&] {
        int now = ++running;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {}
        // The behaviour under test, not a sync point: each job takes time, so that the six
        // would overlap past the bound if it did not hold.
        std::this_thread::sleep_for(20ms);
        --running;
      });
      co_await std::move(op);
    }));
  }
  for (auto& t : tasks) {
    require_settles(t);
    t.get();
  }
  CHECK(peak == 2);
}

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
TEST_CASE("cancelling a task waiting on to_thread requests stop and waits for the worker", "[bridge][to_thread][cancel]") {
  BackgroundLoop loop({.name = "lb-offload-stop"});
  loop.start();
  std::atomic<bool> worker_started{false};
  std::atomic<bool> worker_returned{false};
  auto task = loop.submit([&]() -> asio::awaitable<void> {
    auto op = to_thread([&](std::stop_token stop) {
      worker_started = true;
      eventually([&] { return stop.stop_requested(); });
      // The behaviour under test, not a sync point: the function is still cleaning up after
      // the stop request, and the task must wait that time out.
      std::this_thread::sleep_for(20ms);
      worker_returned = true;
    });
    co_await std::move(op);
  });
  REQUIRE(eventually([&] { return worker_started.load(); }));
  task.cancel();
  require_settles(task);
  // The coroutine waited for the function to return before the task settled.
  CHECK(worker_returned);
  CHECK_THROWS_AS(task.get(), TaskCancelled);
}
#endif

TEST_CASE("abandon_on_cancel resumes the coroutine at once and leaves the worker alone", "[bridge][to_thread][cancel]") {
  BackgroundLoop loop({.name = "lb-offload-aban"});
  loop.start();
  auto release = std::make_shared<Gate>();
  std::atomic<bool> worker_started{false};
  auto task = loop.submit([&, release]() -> asio::awaitable<void> {
    auto op = to_thread(
        [&worker_started, release] {
          worker_started = true;
          release->wait();
        },
        {.abandon_on_cancel = true});
    co_await std::move(op);
  });
  REQUIRE(eventually([&] { return worker_started.load(); }));
  task.cancel();
  require_settles(task, 2000ms);
  CHECK_THROWS_AS(task.get(), TaskCancelled);
  release->open();
}

TEST_CASE("stop reports workers it had to abandon and a late worker never touches the stopped loop",
          "[bridge][to_thread][stop]") {
  auto release = std::make_shared<Gate>();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  auto worker = std::make_shared<std::atomic<pid_t>>(0);
  ShutdownReport report;
  {
    BackgroundLoop loop({.name = "lb-offload-late"});
    loop.start();
    auto task = loop.submit([release, finished, worker]() -> asio::awaitable<int> {
      auto op = to_thread([release, finished, worker] {
        *worker = this_thread_tid();
        release->wait();
        *finished = true;
        return 1;
      });
      co_return co_await std::move(op);
    });
    // The stop finds the function running on its worker.
    REQUIRE(eventually([&] { return worker->load() != 0; }));
    report = loop.stop({.cancel_timeout = 50ms});
    REQUIRE(task.ready());
    CHECK_THROWS_AS(task.get(), TaskAbandoned);
  }
  CHECK(report.abandoned == 1);
  CHECK(report.abandoned_workers == 1);
  // The loop is gone; the worker finishes now (AddressSanitizer watches it).
  release->open();
  CHECK(eventually([&] { return finished->load(); }));
  // And its thread goes all the way to its end, past whatever it does after the function.
  CHECK(eventually([&] { return thread_state(worker->load()) == 0; }));
}

TEST_CASE("to_thread outside a loop thread is refused", "[bridge][to_thread][errors]") {
  CHECK_THROWS_AS(to_thread([] {}), InvalidState);
}

TEST_CASE("jobs queued together each get a thread while the pool has room", "[bridge][to_thread]") {
  LoopOptions options{.name = "lb-offload-room"};
  options.worker_threads = 4;
  BackgroundLoop loop(options);
  loop.start();
  // One finished job leaves an idle thread behind.
  std::atomic<pid_t> warm_worker{0};
  auto warm = loop.submit([&warm_worker]() -> asio::awaitable<void> {
    auto op = to_thread([&warm_worker] { warm_worker = this_thread_tid(); });
    co_await std::move(op);
  });
  require_settles(warm);
  // Idle: asleep, waiting for the next job.
  REQUIRE(eventually([&] {
    const char state = thread_state(warm_worker.load());
    return state == 'S' || state == 'D';
  }));
  // A waits for B: they deadlock unless B gets its own thread.
  auto flag = std::make_shared<std::atomic<bool>>(false);
  TaskHandle<bool> a, b;
  {
    LoopBlocker blocker(loop);  // both start in the same batch
    a = loop.submit([flag]() -> asio::awaitable<bool> {
      auto op = to_thread([flag] {
        auto until = std::chrono::steady_clock::now() + 5s;
        while (!*flag && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        return flag->load();
      });
      co_return co_await std::move(op);
    });
    b = loop.submit([flag]() -> asio::awaitable<bool> {
      auto op = to_thread([flag] {
        *flag = true;
        return true;
      });
      co_return co_await std::move(op);
    });
  }
  require_settles(a);
  require_settles(b);
  CHECK(a.get());
  CHECK(b.get());
}

TEST_CASE("a worker that ignores its stop token gets what is left of the cancel deadline and stop still joins",
          "[bridge][to_thread][stop]") {
  // A cancel deadline longer than stop()'s join margin: waiting a second full cancel
  // deadline for the worker would outlast stop()'s budget and detach the loop thread.
  auto release = std::make_shared<Gate>();
  auto started = std::make_shared<std::atomic<bool>>(false);
  ShutdownReport report;
  std::chrono::steady_clock::duration took{};
  {
    BackgroundLoop loop({.name = "lb-offload-deaf"});
    loop.start();
    auto task = loop.submit([release, started]() -> asio::awaitable<int> {
      auto op = to_thread([release, started] {
        *started = true;
        release->wait();
        return 1;
      });
      co_return co_await std::move(op);
    });
    REQUIRE(eventually([&] { return started->load(); }));
    const auto t0 = std::chrono::steady_clock::now();
    report = loop.stop({.cancel_timeout = 2500ms});
    took = std::chrono::steady_clock::now() - t0;
    REQUIRE(task.ready());
  }
  CHECK(report.joined);
  CHECK(report.abandoned_workers == 1);
  CHECK(took < 4s);
  release->open();
}

TEST_CASE("a stop that drops a task keeps its frame until the to_thread function using it has returned",
          "[bridge][to_thread][stop]") {
  // The function ignores its stop token and reads a local of the coroutine's frame after
  // the stop dropped the task (AddressSanitizer watches it).
  auto read = std::make_shared<std::atomic<int>>(0);
  auto started = std::make_shared<std::atomic<bool>>(false);
  auto release = std::make_shared<Gate>();
  ShutdownReport report;
  {
    BackgroundLoop loop({.name = "lb-offload-keep"});
    loop.start();
    auto task = loop.submit([read, started, release]() -> asio::awaitable<int> {
      std::vector<int> local(1000, 7);
      auto op = to_thread([&local, read, started, release] {
        *started = true;
        release->wait();
        *read = local[999];
        return 1;
      });
      co_return co_await std::move(op);
    });
    REQUIRE(eventually([&] { return started->load(); }));
    // The function reads the frame only once the stop has dropped the task (settled its handle).
    std::thread releaser([&task, release] {
      eventually([&] { return task.ready(); });
      release->open();
    });
    report = loop.stop({.cancel_timeout = 5s, .drop_in_flight = true});
    releaser.join();
    REQUIRE(task.ready());
  }
  CHECK(report.joined);
  CHECK(eventually([&] { return read->load() == 7; }));
}

TEST_CASE("stop from one of the loop's own to_thread workers requests the stop and returns at once",
          "[bridge][to_thread][stop]") {
  // Joining there would wait for the stop, which waits for this very worker.
  BackgroundLoop loop({.name = "lb-offload-stop"});
  loop.start();
  std::atomic<int> joined_inside{-1};
  auto task = loop.submit([&]() -> asio::awaitable<int> {
    auto op = to_thread([&] {
      joined_inside = loop.stop().joined ? 1 : 0;
      return 1;
    });
    co_return co_await std::move(op);
  });
  require_settles(task);
  CHECK(joined_inside == 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(loop.stop().joined);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("a stop's reported duration includes its wait for the to_thread functions still running",
          "[bridge][to_thread][stop]") {
  BackgroundLoop loop({.name = "lb-duration"});
  loop.start();
  Gate entered;
  auto task = loop.submit([&]() -> asio::awaitable<void> {
    // The coroutine lets go of the function when cancelled; the stop still waits for it.
    auto offload = to_thread(
        [&] {
          entered.open();
          // The behaviour under test, not a sync point: the function takes a known time,
          // which the stop's duration must include.
          std::this_thread::sleep_for(300ms);
        },
        {.abandon_on_cancel = true});
    co_await std::move(offload);
  });
  REQUIRE(entered.wait());
  const auto began = std::chrono::steady_clock::now();
  ShutdownReport report = loop.stop();
  const auto took = std::chrono::steady_clock::now() - began;
  CHECK(report.joined);
  CHECK(report.abandoned_workers == 0);
  CHECK(report.duration >= 250ms);
  CHECK(report.duration <= took);
}

// Start + stop of an empty loop against a bare thread; stop with many tasks parked on long
// timers (every future settled), cancelling them or dropping their frames, against Asio
// tasks of the same shape (awaits that throw, awaits that return errors as values); heap
// bytes per pending task.

#include "harness.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>

namespace loopbridge::bench {

namespace {

namespace asio = boost::asio;

constexpr int kStartStopRounds = 20;

/// The two shapes of a task that users write: one whose awaits throw on cancellation
/// (`use_awaitable`), and one that takes errors as values (`as_tuple(use_awaitable)`).
enum class Shape { throwing, as_tuple };

/// A task that counts itself started, then waits an hour; its await throws when cancelled.
asio::awaitable<void> sleeper(std::atomic<int>* started) {
  started->fetch_add(1, std::memory_order_relaxed);
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
  co_await timer.async_wait(asio::use_awaitable);
}

/// The same task taking the wait's error as a value: a cancel throws nothing.
asio::awaitable<void> quiet_sleeper(std::atomic<int>* started) {
  started->fetch_add(1, std::memory_order_relaxed);
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
  auto [error] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  (void)error;
}

asio::awaitable<void> sleeper(std::atomic<int>* started, Shape shape) {
  return shape == Shape::throwing ? sleeper(started) : quiet_sleeper(started);
}

void wait_until_parked(const std::atomic<int>& started, int n) {
  while (started.load(std::memory_order_relaxed) < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
  std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the last one reaches its timer
}

/// A started loopbridge loop pinned to `cpu_id`, with tasks parked on timers.
struct LoopbridgeSleepers {
  explicit LoopbridgeSleepers(int cpu_id, Shape task_shape = Shape::throwing) : shape(task_shape) {
    loop.start();
    loop.submit([cpu_id] { pin_this_thread(cpu_id); }).get();
    for (int i = 0; i < 200; ++i) loop.submit([] { return 1; }).get();
  }
  ~LoopbridgeSleepers() { loop.stop(); }
  LoopbridgeSleepers(const LoopbridgeSleepers&) = delete;
  LoopbridgeSleepers& operator=(const LoopbridgeSleepers&) = delete;
  /// Submits n sleepers from this thread and keeps their handles; returns once all wait.
  void park(int n) {
    handles.reserve(handles.size() + static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) handles.push_back(loop.submit([this] { return sleeper(&started, shape); }));
    wait_until_parked(started, static_cast<int>(handles.size()));
  }
  void check_settled() const {
    for (const auto& h : handles) {
      if (!h.ready()) {
        std::fprintf(stderr, "loopbridge_bench: a TaskHandle did not settle at stop\n");
        std::abort();
      }
    }
  }

  BackgroundLoop loop{{.name = "bench-stop"}};
  Shape shape;
  std::atomic<int> started{0};
  std::vector<TaskHandle<void>> handles;
};

/// The hand-rolled equivalent: co_spawn with use_future, one cancellation signal per task.
struct AsioSleepers {
  struct Batch {
    explicit Batch(int n) : signals(static_cast<std::size_t>(n)) { futures.reserve(static_cast<std::size_t>(n)); }
    std::vector<asio::cancellation_signal> signals;
    std::vector<std::future<void>> futures;
  };

  explicit AsioSleepers(int cpu_id, Shape task_shape = Shape::throwing)
      : shape(task_shape), loop(std::make_unique<RawLoop>(cpu_id)) {}
  AsioSleepers(const AsioSleepers&) = delete;
  AsioSleepers& operator=(const AsioSleepers&) = delete;
  /// Spawns n sleepers on the loop thread (where their signals are used); returns once all wait.
  void park(int n) {
    auto batch = std::make_unique<Batch>(n);
    std::promise<void> spawned;
    asio::post(loop->io, [&] {
      for (auto& s : batch->signals) {
        batch->futures.push_back(asio::co_spawn(loop->io, sleeper(&started, shape),
                                                asio::bind_cancellation_slot(s.slot(), asio::use_future)));
      }
      spawned.set_value();
    });
    spawned.get_future().get();
    parked += n;
    batches.push_back(std::move(batch));
    wait_until_parked(started, parked);
  }
  /// Emits every signal on the loop thread, waits for every future, joins the thread.
  void cancel_and_join() {
    std::promise<void> emitted;
    asio::post(loop->io, [&] {
      for (auto& b : batches) {
        for (auto& s : b->signals) s.emit(asio::cancellation_type::terminal);
      }
      emitted.set_value();
    });
    emitted.get_future().get();
    for (auto& b : batches) {
      for (auto& f : b->futures) f.wait();
    }
    loop->join();
  }
  /// Stops the io_context, joins its thread and destroys it: the suspended frames are
  /// destroyed without resuming, and their futures settle with broken_promise.
  void drop_and_join() {
    loop->io.stop();
    loop->join();
    loop.reset();
  }
  void check_settled() const {
    for (const auto& b : batches) {
      for (const auto& f : b->futures) {
        if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
          std::fprintf(stderr, "loopbridge_bench: a std::future did not settle\n");
          std::abort();
        }
      }
    }
  }

  // Declared before the loop, so that they outlive the frames that use them.
  Shape shape;
  std::atomic<int> started{0};
  int parked = 0;
  std::vector<std::unique_ptr<Batch>> batches;
  std::unique_ptr<RawLoop> loop;
};

}  // namespace

void lifecycle(const Options& o, Results& results) {
  const int loop_cpu = cpu(cpu_count() - 1);
  // Threads created here inherit this CPU, as in the Tokio and Python programs.
  pin_this_thread(cpu(0));
  auto per_round = [](Clock::time_point t) { return seconds_since(t) * 1e6 / kStartStopRounds; };
  auto& r = results;
  std::vector<std::function<void()>> variants{
      [&] {
        auto t = Clock::now();
        for (int i = 0; i < kStartStopRounds; ++i) {
          BackgroundLoop loop({.name = "bench-empty"});
          loop.start();
          loop.stop();
        }
        r.add("start_stop", "loopbridge", "", 0, 0, "us", "lower", "value", per_round(t));
      },
      [&] {
        auto t = Clock::now();
        for (int i = 0; i < kStartStopRounds; ++i) std::thread([] {}).join();
        r.add("start_stop", "std_thread", "", 0, 0, "us", "lower", "value", per_round(t));
      },
      [&] {
        auto t = Clock::now();
        for (int i = 0; i < kStartStopRounds; ++i) RawLoop(-1).join();
        r.add("start_stop", "asio_thread", "", 0, 0, "us", "lower", "value", per_round(t));
      },
  };
  // Each stop beside the raw Asio stop of the same task shape; the frames-dropped stops
  // run no task code, so their shape does not matter.
  for (Shape shape : {Shape::throwing, Shape::as_tuple}) {
    const std::string suffix = shape == Shape::throwing ? "" : "_tuple";
    variants.push_back([&, shape, suffix] {
      LoopbridgeSleepers s(loop_cpu, shape);
      s.park(o.pending);
      auto t = Clock::now();
      s.loop.stop();
      double ms = seconds_since(t) * 1e3;
      s.check_settled();
      r.add("stop_pending", "loopbridge" + suffix, "", 0, 0, "ms", "lower", "value", ms);
    });
    variants.push_back([&, shape, suffix] {
      AsioSleepers s(loop_cpu, shape);
      s.park(o.pending);
      auto t = Clock::now();
      s.cancel_and_join();
      double ms = seconds_since(t) * 1e3;
      s.check_settled();
      r.add("stop_pending", "asio_cancel_signals" + suffix, "", 0, 0, "ms", "lower", "value", ms);
    });
  }
  variants.push_back([&] {
    // The frames are destroyed without resuming, as Tokio drops its tasks; the handles
    // settle with TaskCancelled.
    LoopbridgeSleepers s(loop_cpu);
    s.park(o.pending);
    auto t = Clock::now();
    s.loop.stop({.drop_in_flight = true});
    double ms = seconds_since(t) * 1e3;
    s.check_settled();
    r.add("stop_pending", "loopbridge_drop", "", 0, 0, "ms", "lower", "value", ms);
  });
  variants.push_back([&] {
    AsioSleepers s(loop_cpu);
    s.park(o.pending);
    auto t = Clock::now();
    s.drop_and_join();
    double ms = seconds_since(t) * 1e3;
    s.check_settled();
    r.add("stop_pending", "asio_destroy", "", 0, 0, "ms", "lower", "value", ms);
  });
  alternate(o.blocks, variants);
}

void memory(const Options& o, Results& results) {
  // One arena for every thread, so that mallinfo2() sees the loop threads' allocations.
  mallopt(M_ARENA_MAX, 1);
  const int loop_cpu = cpu(cpu_count() - 1);
  pin_this_thread(cpu(0));
  auto per_task = [&](double before) { return (heap_in_use() - before) / o.pending; };
  for (int b = 0; b < std::min(o.blocks, 3); ++b) {
    {
      LoopbridgeSleepers s(loop_cpu);
      s.park(1);  // the timer queue's first entry
      double before = heap_in_use();
      s.park(o.pending);
      results.add("mem_pending", "loopbridge", "", 0, 0, "bytes", "lower", "value", per_task(before));
    }
    {
      AsioSleepers s(loop_cpu);
      s.park(1);
      double before = heap_in_use();
      s.park(o.pending);
      results.add("mem_pending", "asio_co_spawn_signal", "", 0, 0, "bytes", "lower", "value", per_task(before));
      s.cancel_and_join();
    }
  }
}

}  // namespace loopbridge::bench

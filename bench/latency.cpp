// Round trips (submit, then get) and submit-to-start lag from one host thread, with host
// and loop pinned to the same CPU, to different CPUs, and placed by the OS (where a user's
// threads run), against raw Asio and two floors:
// threads handing a turn back and forth through a spinning atomic, and through a mutex and
// condition variable.

#include "harness.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>

namespace loopbridge::bench {

namespace {

namespace asio = boost::asio;

asio::awaitable<int> one() { co_return 1; }

asio::awaitable<Clock::time_point> now_on_loop() { co_return Clock::now(); }

template <class Once>
std::vector<double> time_each(int n, Once once) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    once();
    us.push_back(micros(Clock::now() - t));
  }
  return us;
}

/// `start()` submits a task that returns the time it started, and waits for it.
template <class Start>
std::vector<double> lags(int n, Start start) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    Clock::time_point started = start();
    us.push_back(std::max(0.0, micros(started - t)));
  }
  return us;
}

template <class T, class Make>
T post_promise(asio::io_context& io, Make make) {
  std::promise<T> p;
  auto f = p.get_future();
  asio::post(io, [p = std::move(p), make]() mutable { p.set_value(make()); });
  return f.get();
}

/// One round trip per sample: this thread hands the turn over and waits to get it back,
/// spinning on an atomic (the hardware floor) or sleeping on a condition variable.
std::vector<double> floor_round_trips(int n, bool spinning, int other_cpu) {
  std::atomic<int> turn{0};
  std::mutex m;
  std::condition_variable cv;
  int round = 0;
  std::atomic<bool> other_ready{false};
  std::thread other([&] {
    place_this_thread(other_cpu);
    other_ready.store(true, std::memory_order_release);
    for (int i = 0; i < n; ++i) {
      if (spinning) {
        while (turn.load(std::memory_order_acquire) != 1) {
        }
        turn.store(0, std::memory_order_release);
      } else {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return round % 2 == 1; });
        ++round;
        cv.notify_one();
      }
    }
  });
  // It starts on this thread's CPU: let it move to its own before spinning against it.
  while (!other_ready.load(std::memory_order_acquire)) std::this_thread::yield();
  auto us = time_each(n, [&] {
    if (spinning) {
      turn.store(1, std::memory_order_release);
      while (turn.load(std::memory_order_acquire) != 0) {
      }
    } else {
      std::unique_lock lock(m);
      ++round;
      cv.notify_one();
      cv.wait(lock, [&] { return round % 2 == 0; });
    }
  });
  other.join();
  return us;
}

void place_loop(const LoopHandle& loop, int cpu_id) {
  loop.submit([cpu_id] { place_this_thread(cpu_id); }).get();
}

void warm_up(const LoopHandle& loop) {
  for (int i = 0; i < 200; ++i) loop.submit([] { return 1; }).get();
}

}  // namespace

void latency(const Options& o, Results& results) {
  struct Where {
    const char* name;
    int host_cpu;
    int loop_cpu;
  };
  std::vector<Where> placements{{"same_cpu", cpu(0), cpu(0)}};
  if (cpu_count() > 1) placements.push_back({"cross_cpu", cpu(0), cpu(1)});
  placements.push_back({"os", kAnyCpu, kAnyCpu});

  for (const auto& p : placements) {
    const std::string at = p.name;
    const int loop_cpu = p.loop_cpu;
    const int n = o.samples;
    place_this_thread(p.host_cpu);

    BackgroundLoop loop({.name = "bench"});
    loop.start();
    place_loop(loop, loop_cpu);
    warm_up(loop);
    RawLoop raw(kAnyCpu);
    raw.place(loop_cpu);
    for (int i = 0; i < 200; ++i) post_promise<int>(raw.io, [] { return 1; });

    auto& r = results;
    std::vector<std::function<void()>> variants{
        [&] { r.add_latency("rt_callable", "loopbridge", at, time_each(n, [&] { loop.submit([] { return 1; }).get(); }), true); },
        [&] {
          r.add_latency("rt_callable", "asio_post_promise", at,
                        time_each(n, [&] { post_promise<int>(raw.io, [] { return 1; }); }), true);
        },
        [&] { r.add_latency("rt_coroutine", "loopbridge", at, time_each(n, [&] { loop.submit(one).get(); }), true); },
        [&] {
          r.add_latency("rt_coroutine", "asio_co_spawn", at,
                        time_each(n, [&] { asio::co_spawn(raw.io, one(), asio::use_future).get(); }), true);
        },
        [&] { r.add_latency("lag_callable", "loopbridge", at, lags(n, [&] { return loop.submit([] { return Clock::now(); }).get(); }), false); },
        [&] {
          r.add_latency("lag_callable", "asio_post_promise", at,
                        lags(n, [&] { return post_promise<Clock::time_point>(raw.io, [] { return Clock::now(); }); }), false);
        },
        [&] { r.add_latency("lag_coroutine", "loopbridge", at, lags(n, [&] { return loop.submit(now_on_loop).get(); }), false); },
        [&] {
          r.add_latency("lag_coroutine", "asio_co_spawn", at,
                        lags(n, [&] { return asio::co_spawn(raw.io, now_on_loop(), asio::use_future).get(); }), false);
        },
        [&] { r.add_latency("rt_floor", "mutex_condvar", at, floor_round_trips(n, false, loop_cpu), true); },
    };

    // Low-latency mode, and the spinning floor, only pinned across CPUs: on one CPU a
    // spinning waiter only keeps the other side from running.
    std::optional<BackgroundLoop> spinning;
    if (p.host_cpu != p.loop_cpu && p.loop_cpu != kAnyCpu) {
      LoopOptions spin_options{.name = "bench-spin"};
      spin_options.spin_before_sleep = std::chrono::microseconds(50);
      spinning.emplace(spin_options);
      spinning->start();
      place_loop(*spinning, loop_cpu);
      warm_up(*spinning);
      variants.push_back([&] {
        r.add_latency("rt_callable", "loopbridge_spin", at, time_each(n, [&] { spinning->submit([] { return 1; }).get(); }), true);
      });
      variants.push_back([&] {
        r.add_latency("rt_coroutine", "loopbridge_spin", at, time_each(n, [&] { spinning->submit(one).get(); }), true);
      });
      variants.push_back([&] { r.add_latency("rt_floor", "atomic_spin", at, floor_round_trips(n, true, loop_cpu), true); });
    }
    alternate(o.blocks, variants);
  }
  pin_this_thread(cpu(0));
}

}  // namespace loopbridge::bench

// Side-by-side measurements of loopbridge against hand-rolled Asio plumbing, in one process,
// with the variants interleaved in alternating blocks so they see the same machine state.
// Prints one line per metric: the median over blocks of each variant and their ratio.

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void pin_this_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// An io_context on its own thread with a work guard: the raw Asio baseline.
struct RawLoop {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  explicit RawLoop(int cpu) : thread([this, cpu] { pin_this_thread(cpu); io.run(); }) {}
  ~RawLoop() {
    work.reset();
    io.stop();
    thread.join();
  }
};

struct Pair {
  const char* name;
  std::function<double()> ours;      // returns a measure (ops/s or seconds)
  std::function<double()> baseline;  // same unit
  bool higher_is_better;
};

void run_pair(const Pair& p, int blocks) {
  std::vector<double> ours, base;
  for (int b = 0; b < blocks; ++b) {
    if (b % 2 == 0) {
      ours.push_back(p.ours());
      base.push_back(p.baseline());
    } else {
      base.push_back(p.baseline());
      ours.push_back(p.ours());
    }
  }
  double o = median(ours), r = median(base);
  std::printf("%-58s loopbridge %12.4g  baseline %12.4g  ratio %6.2fx %s\n", p.name, o, r, o / r,
              p.higher_is_better ? "(higher is better)" : "(lower is better)");
  std::fflush(stdout);
}

constexpr int kBatch = 20000;

asio::awaitable<int> trivial_coroutine() { co_return 1; }

}  // namespace

int main(int argc, char** argv) {
  const int blocks = argc > 1 ? std::atoi(argv[1]) : 7;
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  const int loop_cpu = ncpu > 1 ? 1 : -1;

  loopbridge::BackgroundLoop loop({.name = "bench"});
  loop.start();
  {
    auto pin = loop.submit([loop_cpu] { pin_this_thread(loop_cpu); });
    pin.get();
  }
  RawLoop raw(loop_cpu);
  pin_this_thread(0);

  std::vector<Pair> pairs;

  // Submits a batch with `start_one` (which returns a future-like), then gets every result.
  auto batch_throughput = [](auto start_one) {
    using Future = decltype(start_one());
    std::vector<Future> futures;
    futures.reserve(kBatch);
    auto t = Clock::now();
    for (int i = 0; i < kBatch; ++i) futures.push_back(start_one());
    long sum = 0;
    for (auto& f : futures) sum += f.get();
    return sum / seconds_since(t);
  };

  pairs.push_back({"callable + future throughput (ops/s), batch of 20000",
                   [&] { return batch_throughput([&] { return loop.submit([] { return 1; }); }); },
                   [&] {
                     return batch_throughput([&] {
                       std::promise<int> p;
                       auto f = p.get_future();
                       asio::post(raw.io, [p = std::move(p)]() mutable { p.set_value(1); });
                       return f;
                     });
                   },
                   true});

  pairs.push_back({"coroutine + future throughput (ops/s), batch of 20000",
                   [&] { return batch_throughput([&] { return loop.submit(trivial_coroutine); }); },
                   [&] {
                     return batch_throughput(
                         [&] { return asio::co_spawn(raw.io, trivial_coroutine(), asio::use_future); });
                   },
                   true});

  pairs.push_back({"fire-and-forget throughput (ops/s), batch of 20000",
                   [&] {
                     std::atomic<int> done{0};
                     auto t = Clock::now();
                     for (int i = 0; i < kBatch; ++i) loop.post([&done] { done.fetch_add(1, std::memory_order_relaxed); });
                     while (done.load(std::memory_order_acquire) < kBatch) std::this_thread::yield();
                     return kBatch / seconds_since(t);
                   },
                   [&] {
                     std::atomic<int> done{0};
                     auto t = Clock::now();
                     for (int i = 0; i < kBatch; ++i) asio::post(raw.io, [&done] { done.fetch_add(1, std::memory_order_relaxed); });
                     while (done.load(std::memory_order_acquire) < kBatch) std::this_thread::yield();
                     return kBatch / seconds_since(t);
                   },
                   true});

  auto round_trips = [&](bool coroutine, bool ours, int n) {
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      auto t = Clock::now();
      if (ours) {
        if (coroutine) {
          loop.submit(trivial_coroutine).get();
        } else {
          loop.submit([] { return 1; }).get();
        }
      } else if (coroutine) {
        asio::co_spawn(raw.io, trivial_coroutine(), asio::use_future).get();
      } else {
        std::promise<int> p;
        auto f = p.get_future();
        asio::post(raw.io, [p = std::move(p)]() mutable { p.set_value(1); });
        f.get();
      }
      us.push_back(seconds_since(t) * 1e6);
    }
    return us;
  };
  pairs.push_back({"callable round trip p50 (us), host and loop on different CPUs",
                   [&] { return median(round_trips(false, true, 2000)); },
                   [&] { return median(round_trips(false, false, 2000)); }, false});
  pairs.push_back({"coroutine round trip p50 (us), host and loop on different CPUs",
                   [&] { return median(round_trips(true, true, 2000)); },
                   [&] { return median(round_trips(true, false, 2000)); }, false});
  pairs.push_back({"callable round trip p99 (us), different CPUs",
                   [&] { return percentile(round_trips(false, true, 2000), 0.99); },
                   [&] { return percentile(round_trips(false, false, 2000), 0.99); }, false});

  pairs.push_back({"start + stop of an empty loop (us) vs create + join a thread",
                   [&] {
                     auto t = Clock::now();
                     for (int i = 0; i < 20; ++i) {
                       loopbridge::BackgroundLoop l({.name = "bench-empty"});
                       l.start();
                       l.stop();
                     }
                     return seconds_since(t) * 1e6 / 20;
                   },
                   [&] {
                     auto t = Clock::now();
                     for (int i = 0; i < 20; ++i) std::thread([] {}).join();
                     return seconds_since(t) * 1e6 / 20;
                   },
                   false});

  pairs.push_back({"stop with 10000 tasks on long timers (ms) vs Asio cancel signals",
                   [&] {
                     loopbridge::BackgroundLoop l({.name = "bench-stop"});
                     l.start();
                     std::vector<loopbridge::TaskHandle<void>> hs;
                     for (int i = 0; i < 10000; ++i) {
                       hs.push_back(l.submit([]() -> asio::awaitable<void> {
                         asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
                         co_await timer.async_wait(asio::use_awaitable);
                       }));
                     }
                     hs.back().wait_for(std::chrono::milliseconds(1));
                     while (l.queue_depth() > 0) std::this_thread::yield();
                     auto t = Clock::now();
                     l.stop();
                     double ms = seconds_since(t) * 1e3;
                     for (auto& h : hs) {
                       if (!h.ready()) std::abort();
                     }
                     return ms;
                   },
                   [&] {
                     // Hand-rolled: one cancellation_signal per task, emitted on the loop thread,
                     // futures via use_future, then join.
                     RawLoop r(loop_cpu);
                     std::vector<asio::cancellation_signal> signals(10000);
                     std::vector<std::future<void>> fs;
                     std::promise<void> spawned;
                     asio::post(r.io, [&] {
                       for (auto& s : signals) {
                         fs.push_back(asio::co_spawn(
                             r.io,
                             []() -> asio::awaitable<void> {
                               asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
                               co_await timer.async_wait(asio::use_awaitable);
                             }(),
                             asio::bind_cancellation_slot(s.slot(), asio::use_future)));
                       }
                       spawned.set_value();
                     });
                     spawned.get_future().get();
                     auto t = Clock::now();
                     std::promise<void> emitted;
                     asio::post(r.io, [&] {
                       for (auto& s : signals) s.emit(asio::cancellation_type::terminal);
                       emitted.set_value();
                     });
                     emitted.get_future().get();
                     for (auto& f : fs) f.wait();
                     r.work.reset();
                     r.io.stop();
                     r.thread.join();
                     r.thread = std::thread([] {});
                     return seconds_since(t) * 1e3;
                   },
                   false});

  for (const auto& p : pairs) run_pair(p, blocks);

  // Round trips in both placements, and the opt-in spinning mode against the floors.
  auto one_placement = [&](const char* label, int host_cpu, int loop_cpu_now) {
    loopbridge::BackgroundLoop l({.name = "bench-rt"});
    l.start();
    l.submit([loop_cpu_now] { pin_this_thread(loop_cpu_now); }).get();
    RawLoop r(loop_cpu_now);
    loopbridge::LoopOptions spin_options{.name = "bench-spin"};
    spin_options.spin_before_sleep = std::chrono::microseconds(50);
    loopbridge::BackgroundLoop spinning(spin_options);
    spinning.start();
    spinning.submit([loop_cpu_now] { pin_this_thread(loop_cpu_now); }).get();
    pin_this_thread(host_cpu);
    auto rt = [](auto&& once, int n) {
      std::vector<double> us;
      for (int i = 0; i < n; ++i) {
        auto t = Clock::now();
        once();
        us.push_back(seconds_since(t) * 1e6);
      }
      return median(us);
    };
    std::vector<double> ours, raw_post, ours_co, raw_co, spin_rt;
    for (int b = 0; b < blocks; ++b) {
      ours.push_back(rt([&] { l.submit([] { return 1; }).get(); }, 500));
      raw_post.push_back(rt([&] {
        std::promise<int> p;
        auto f = p.get_future();
        asio::post(r.io, [p = std::move(p)]() mutable { p.set_value(1); });
        f.get();
      }, 500));
      ours_co.push_back(rt([&] { l.submit(trivial_coroutine).get(); }, 500));
      raw_co.push_back(rt([&] { asio::co_spawn(r.io, trivial_coroutine(), asio::use_future).get(); }, 500));
      if (loop_cpu_now != host_cpu) spin_rt.push_back(rt([&] { spinning.submit([] { return 1; }).get(); }, 500));
    }
    std::printf("%-58s loopbridge %8.2f us  raw post+future %8.2f us  ratio %5.2fx\n",
                (std::string("callable round trip p50, ") + label).c_str(), median(ours), median(raw_post),
                median(ours) / median(raw_post));
    std::printf("%-58s loopbridge %8.2f us  raw co_spawn     %8.2f us  ratio %5.2fx\n",
                (std::string("coroutine round trip p50, ") + label).c_str(), median(ours_co), median(raw_co),
                median(ours_co) / median(raw_co));
    if (!spin_rt.empty()) {
      std::printf("%-58s loopbridge %8.2f us\n", (std::string("spinning-mode round trip p50, ") + label).c_str(),
                  median(spin_rt));
    }
    pin_this_thread(0);
    return spin_rt.empty() ? 0.0 : median(spin_rt);
  };
  if (ncpu > 1) {
    one_placement("same CPU", 0, 0);
    double spin = one_placement("different CPUs", 0, 1);
    // Floors: two threads ping-ponging through a spinning atomic, and through mutex + condvar.
    auto floor = [&](bool spinning_floor) {
      std::atomic<int> turn{0};
      std::mutex m;
      std::condition_variable cv;
      int round = 0;
      const int n = 2000;
      std::thread other([&] {
        pin_this_thread(1);
        for (int i = 0; i < n; ++i) {
          if (spinning_floor) {
            while (turn.load(std::memory_order_acquire) != 1) {}
            turn.store(0, std::memory_order_release);
          } else {
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return round % 2 == 1; });
            ++round;
            cv.notify_one();
          }
        }
      });
      pin_this_thread(0);
      std::vector<double> us;
      for (int i = 0; i < n; ++i) {
        auto t = Clock::now();
        if (spinning_floor) {
          turn.store(1, std::memory_order_release);
          while (turn.load(std::memory_order_acquire) != 0) {}
        } else {
          std::unique_lock lock(m);
          ++round;
          cv.notify_one();
          cv.wait(lock, [&] { return round % 2 == 0; });
        }
        us.push_back(seconds_since(t) * 1e6);
      }
      other.join();
      return median(us);
    };
    double atomic_floor = floor(true), sleeping_floor = floor(false);
    std::printf("floors across CPUs: spinning atomic %.2f us, mutex+condvar %.2f us; spinning mode = %.1fx the atomic floor\n",
                atomic_floor, sleeping_floor, spin / atomic_floor);
  }
  return 0;
}

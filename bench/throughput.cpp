// Throughput from several host threads: callables with futures, coroutines with futures
// (each host keeps a batch in flight, then waits for every result in order) and
// fire-and-forget posts; on one loop against raw Asio, and on a LoopPool against a
// round-robin set of io_contexts; each with the threads pinned, spread and placed by the OS
// (see Placement).

#include "harness.hpp"

#include <loopbridge/loopbridge.hpp>
#if __has_include(<loopbridge/loop/loop_pool.hpp>)
#include <loopbridge/loop/loop_pool.hpp>
#define LOOPBRIDGE_BENCH_HAS_POOL 1
#endif

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>

namespace loopbridge::bench {

namespace {

namespace asio = boost::asio;

asio::awaitable<int> one() { co_return 1; }

std::future<int> post_promise(asio::io_context& io) {
  std::promise<int> p;
  auto f = p.get_future();
  asio::post(io, [p = std::move(p)]() mutable { p.set_value(1); });
  return f;
}

/// One host's share: `o.ops` tasks started by `start_one`, `o.batch` in flight at a time,
/// every result taken in order. Returns the sum of the results.
template <class StartOne>
long run_batches(const Options& o, StartOne start_one) {
  using Future = decltype(start_one());
  std::vector<Future> futures;
  futures.reserve(static_cast<std::size_t>(o.batch));
  long sum = 0;
  for (int b = 0; b < o.ops / o.batch; ++b) {
    for (int i = 0; i < o.batch; ++i) futures.push_back(start_one());
    for (auto& f : futures) sum += f.get();
    futures.clear();
  }
  return sum;
}

/// ops/s over all hosts; `one_host` returns the sum of its results (checked).
double futures_throughput(const Options& o, int hosts, const std::function<int(int)>& host_cpu,
                          const std::function<long()>& one_host) {
  std::atomic<long> total{0};
  auto [start, end] = run_hosts(hosts, host_cpu, [&](int) { total.fetch_add(one_host()); });
  const long expected = static_cast<long>(hosts) * o.ops;
  if (total.load() != expected) {
    std::fprintf(stderr, "loopbridge_bench: %ld results instead of %ld\n", total.load(), expected);
    std::abort();
  }
  return static_cast<double>(expected) / std::chrono::duration<double>(end - start).count();
}

/// ops/s over all hosts until the last posted task has run; `post_all` posts `o.ops`
/// tasks that each count once on `done`.
double post_throughput(const Options& o, int hosts, const std::function<int(int)>& host_cpu,
                       const std::function<void(Completion&)>& post_all) {
  Completion done(static_cast<long>(hosts) * o.ops);
  auto start = run_hosts(hosts, host_cpu, [&](int) { post_all(done); }).first;
  auto end = done.wait();
  return static_cast<double>(done.expected) / std::chrono::duration<double>(end - start).count();
}

void place_loop(const LoopHandle& loop, int cpu_id) {
  loop.submit([cpu_id] { place_this_thread(cpu_id); }).get();
  for (int i = 0; i < 200; ++i) loop.submit([] { return 1; }).get();
}

}  // namespace

void throughput(const Options& o, Results& results) {
  pin_this_thread(cpu(0));
  BackgroundLoop loop({.name = "bench"});
  loop.start();
  RawLoop raw(kAnyCpu);
  for (int i = 0; i < 200; ++i) post_promise(raw.io).get();

  for (int hosts : o.threads) {
    for (Placement placement : placements_for(hosts)) {
      place_loop(loop, loop_cpu(placement));
      raw.place(loop_cpu(placement));
      const std::function<int(int)> on_cpu = [placement](int h) { return host_cpu(placement, h); };
      auto add = [&, at = std::string(placement_name(placement))](const char* metric, const char* variant,
                                                                   double value) {
        results.add(metric, variant, at, hosts, 0, "ops/s", "higher", "value", value);
      };
      std::vector<std::function<void()>> variants{
          [&] {
            add("tp_callable", "loopbridge", futures_throughput(o, hosts, on_cpu, [&] {
                  return run_batches(o, [&] { return loop.submit([] { return 1; }); });
                }));
          },
          [&] {
            add("tp_callable", "asio_post_promise", futures_throughput(o, hosts, on_cpu, [&] {
                  return run_batches(o, [&] { return post_promise(raw.io); });
                }));
          },
          [&] {
            add("tp_coroutine", "loopbridge", futures_throughput(o, hosts, on_cpu, [&] {
                  return run_batches(o, [&] { return loop.submit(one); });
                }));
          },
          [&] {
            add("tp_coroutine", "asio_co_spawn", futures_throughput(o, hosts, on_cpu, [&] {
                  return run_batches(o, [&] { return asio::co_spawn(raw.io, one(), asio::use_future); });
                }));
          },
          [&] {
            add("tp_post", "loopbridge", post_throughput(o, hosts, on_cpu, [&](Completion& done) {
                  for (int i = 0; i < o.ops; ++i) loop.post([&done] { done.count(); });
                }));
          },
          [&] {
            add("tp_post", "asio_post", post_throughput(o, hosts, on_cpu, [&](Completion& done) {
                  for (int i = 0; i < o.ops; ++i) asio::post(raw.io, [&done] { done.count(); });
                }));
          },
      };
      alternate(o.blocks, variants);
    }
  }
}

void pool([[maybe_unused]] const Options& o, [[maybe_unused]] Results& results) {
#ifndef LOOPBRIDGE_BENCH_HAS_POOL
  std::fprintf(stderr, "loopbridge_bench: this loopbridge has no LoopPool; pool group skipped\n");
#else
  pin_this_thread(cpu(0));
  for (int loops : o.pool_loops) {
    LoopPool loop_pool({.loops = static_cast<std::size_t>(loops)});
    loop_pool.start();
    std::vector<std::unique_ptr<RawLoop>> raw;
    for (int i = 0; i < loops; ++i) raw.push_back(std::make_unique<RawLoop>(kAnyCpu));
    // The hand-rolled pool: one shared counter picks the next io_context, as LoopPool does.
    std::atomic<std::size_t> next{0};
    auto next_io = [&]() -> asio::io_context& {
      return raw[next.fetch_add(1, std::memory_order_relaxed) % raw.size()]->io;
    };

    // The spread placement is the pool's pinned one: hosts go to the CPUs the loops leave.
    for (Placement placement : {Placement::spread, Placement::os}) {
      for (int i = 0; i < loops; ++i) {
        place_loop(loop_pool.loop(static_cast<std::size_t>(i)), loop_cpu(placement, i, loops));
        raw[static_cast<std::size_t>(i)]->place(loop_cpu(placement, i, loops));
      }
      const std::function<int(int)> on_cpu = [placement, loops](int h) { return host_cpu(placement, h, loops); };
      const std::string at = placement == Placement::os ? "os" : "pinned";
      for (int hosts : o.threads) {
        auto add = [&](const char* metric, const char* variant, double value) {
          results.add(metric, variant, at, hosts, loops, "ops/s", "higher", "value", value);
        };
        std::vector<std::function<void()>> variants{
            [&] {
              add("pool_callable", "loopbridge_pool", futures_throughput(o, hosts, on_cpu, [&] {
                    return run_batches(o, [&] { return loop_pool.submit([] { return 1; }); });
                  }));
            },
            [&] {
              add("pool_callable", "asio_pool_post_promise", futures_throughput(o, hosts, on_cpu, [&] {
                    return run_batches(o, [&] { return post_promise(next_io()); });
                  }));
            },
            [&] {
              add("pool_coroutine", "loopbridge_pool", futures_throughput(o, hosts, on_cpu, [&] {
                    return run_batches(o, [&] { return loop_pool.submit(one); });
                  }));
            },
            [&] {
              add("pool_coroutine", "asio_pool_co_spawn", futures_throughput(o, hosts, on_cpu, [&] {
                    return run_batches(o, [&] { return asio::co_spawn(next_io(), one(), asio::use_future); });
                  }));
            },
        };
        alternate(o.blocks, variants);
      }
    }
    loop_pool.stop();
  }
#endif
}

}  // namespace loopbridge::bench

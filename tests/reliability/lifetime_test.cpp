// Lifetime: thousands of loops started and stopped in a row leave the process as they
// found it: the same threads, the same descriptors, the same resident memory (within the
// allocator's slack); LeakSanitizer (asan preset) and valgrind (report.sh) check the heap.

#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>

#include "figures.hpp"
#include "support/deadline.hpp"
#include "support/process.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

// 10,000 in plain builds (a few seconds); fewer under the sanitizers, which make each
// thread start and stop many times slower. LOOPBRIDGE_CYCLES overrides (valgrind runs 200).
std::size_t cycles() {
  if (const char* env = std::getenv("LOOPBRIDGE_CYCLES"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  return kThreadSanitizer ? 1'000 : kAddressSanitizer ? 2'000 : 10'000;
}

// One life: start, a coroutine on a timer, a callable, now and then offloaded work (which
// starts the worker pool), a task left pending; ended by stop() or by the destructor.
void one_life(std::size_t i) {
  BackgroundLoop loop({.name = "lb-cycle"});
  loop.start();
  auto timer = loop.submit([]() -> asio::awaitable<int> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::microseconds(10));
    co_await t.async_wait(asio::use_awaitable);
    co_return 1;
  });
  auto callable = loop.submit([] { return 2; });
  TaskHandle<int> offloaded;
  if (i % 10 == 0) {
    offloaded = loop.submit([]() -> asio::awaitable<int> {
      auto op = to_thread([] { return 3; });
      co_return co_await std::move(op);
    });
  }
  auto pending = loop.submit([]() -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await t.async_wait(asio::use_awaitable);
  });
  REQUIRE(timer.get() + callable.get() == 3);
  if (offloaded.valid()) REQUIRE(offloaded.get() == 3);
  if (i % 2 == 0) {
    ShutdownReport report = loop.stop();
    REQUIRE(report.joined);
    REQUIRE(report.cancelled == 1);
  }
  // else: the destructor stops it
}

}  // namespace

TEST_CASE("thousands of start and stop cycles leave threads descriptors and memory at their baseline",
          "[reliability][lifetime]") {
  const std::size_t total = cycles();
  const std::size_t warm_up = std::min<std::size_t>(200, total / 10);
  for (std::size_t i = 0; i < warm_up; ++i) one_life(i);

  const std::size_t threads_before = thread_count();
  const std::size_t fds_before = fd_count();
  const std::size_t rss_before = resident_bytes();
  std::size_t rss_peak = rss_before;
  const auto begin = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < total; ++i) {
    one_life(i);
    if (i % 500 == 499) {
      REQUIRE(eventually([&] { return thread_count() == threads_before; }));
      REQUIRE(fd_count() == fds_before);
      rss_peak = std::max(rss_peak, resident_bytes());
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  CHECK(eventually([&] { return thread_count() == threads_before; }));
  CHECK(fd_count() == fds_before);
  const std::size_t rss_after = resident_bytes();
  const std::size_t growth = rss_after > rss_before ? rss_after - rss_before : 0;
  INFO("resident memory " << rss_before / 1024 << " KiB before, " << rss_after / 1024 << " KiB after, peak "
                          << rss_peak / 1024 << " KiB");
  // The tolerance: glibc keeps freed memory in its per-thread arenas and trims lazily, so a
  // process that has run thousands of threads keeps some hundreds of KiB it does not use.
  // A leak of one task or loop per cycle would show as megabytes here. Under the
  // sanitizers or valgrind the figure means little (shadow memory, quarantine, valgrind's
  // own heap): LeakSanitizer and memcheck check the heap instead.
  if (!kSanitized && !under_valgrind()) CHECK(growth < 2 * 1024 * 1024);

  record_figure("lifetime", "cycles", total);
  record_figure("lifetime", "milliseconds", static_cast<std::uint64_t>(
                                                 std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  record_figure("lifetime", "threads before", threads_before);
  record_figure("lifetime", "threads after", thread_count());
  record_figure("lifetime", "descriptors before", fds_before);
  record_figure("lifetime", "descriptors after", fd_count());
  record_figure("lifetime", "resident KiB before", rss_before / 1024);
  record_figure("lifetime", "resident KiB after", rss_after / 1024);
}

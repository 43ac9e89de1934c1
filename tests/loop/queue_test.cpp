#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/detail/recycled_memory.hpp>

#include "support/deadline.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

TEST_CASE("commands from one thread run in the order they were submitted", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-order"});
  loop.start();
  std::vector<int> seen;  // touched only on the loop thread
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < 2000; ++i) {
    if (i % 2 == 0) {
      handles.push_back(loop.submit([&seen, i] { seen.push_back(i); }));
    } else {
      handles.push_back(loop.submit([&seen, i]() -> asio::awaitable<void> {
        seen.push_back(i);
        co_return;
      }));
    }
  }
  auto all = loop.submit([&seen] { return seen.size(); });
  require_settles(all);
  REQUIRE(all.get() == 2000);
  for (int i = 0; i < 2000; ++i) REQUIRE(seen[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("commands from many threads keep each thread's order", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-mpsc"});
  loop.start();
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::vector<int>> seen(kThreads);
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) loop.post([&seen, t, i] { seen[static_cast<std::size_t>(t)].push_back(i); });
    });
  }
  for (auto& p : producers) p.join();
  auto done = loop.submit([] {});
  require_settles(done);
  for (const auto& one : seen) {
    REQUIRE(one.size() == kEach);
    for (int i = 0; i < kEach; ++i) REQUIRE(one[static_cast<std::size_t>(i)] == i);
  }
}

TEST_CASE("the queue depth counts commands the loop has not run yet", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-depth"});
  loop.start();
  LoopBlocker blocker(loop);
  std::vector<TaskHandle<int>> queued;
  for (int i = 0; i < 100; ++i) queued.push_back(loop.submit([i] { return i; }));
  CHECK(loop.queue_depth() == 100);
  blocker.release();
  for (auto& h : queued) require_settles(h);
  CHECK(eventually([&] { return loop.queue_depth() == 0; }));
}

TEST_CASE("a coroutine that keeps yielding does not starve the queue", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-yield"});
  loop.start();
  std::atomic<bool> stop_spinning{false};
  std::atomic<long> spins{0};
  auto spinner = loop.submit([&]() -> asio::awaitable<void> {
    while (!stop_spinning) {
      ++spins;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
  });
  REQUIRE(eventually([&] { return spins.load() > 100; }));
  for (int i = 0; i < 50; ++i) {
    auto next = loop.submit([i] { return i; });
    require_settles(next, 2000ms);
    CHECK(next.get() == i);
  }
  stop_spinning = true;
  require_settles(spinner);
}

namespace {

using loopbridge::detail::RecycledMemory;

/// Allocates `count` blocks on a thread of its own, gives them back on another, and returns
/// their addresses in the order they were given back.
std::vector<void*> blocks_freed_elsewhere(std::size_t count) {
  std::vector<void*> blocks;
  std::thread([&] {
    for (std::size_t i = 0; i < count; ++i) blocks.push_back(RecycledMemory::allocate(64));
  }).join();
  std::thread([&] {
    for (void* block : blocks) RecycledMemory::deallocate(block, 64);
  }).join();
  return blocks;
}

/// The first `count` blocks a new thread allocates (it gives them back).
std::vector<void*> allocated_by_new_thread(std::size_t count) {
  std::vector<void*> blocks;
  std::thread([&] {
    for (std::size_t i = 0; i < count; ++i) blocks.push_back(RecycledMemory::allocate(64));
    for (void* block : blocks) RecycledMemory::deallocate(block, 64);
  }).join();
  return blocks;
}

}  // namespace

TEST_CASE("a posted call's memory freed on the loop thread serves the next posts of any thread", "[loop][queue]") {
  if (!RecycledMemory::recycling()) {
    SUCCEED("AddressSanitizer build: every block goes to operator new and delete");
    return;
  }
  std::vector<void*> freed = blocks_freed_elsewhere(100);
  std::vector<void*> reused = allocated_by_new_thread(100);
  CHECK(reused == std::vector<void*>(freed.rbegin(), freed.rend()));  // last freed, first reused
  // Larger objects are not recycled.
  void* large = RecycledMemory::allocate(RecycledMemory::kBlockSize + 1);
  RecycledMemory::deallocate(large, RecycledMemory::kBlockSize + 1);
}

TEST_CASE("a thread keeps at most a bounded number of freed blocks for others to take", "[loop][queue]") {
  if (!RecycledMemory::recycling()) {
    SUCCEED("AddressSanitizer build: every block goes to operator new and delete");
    return;
  }
  // One thread frees more than the bound while nobody allocates: the first kMaxReturned
  // wait for reuse, the rest go back to the system (so an idle process does not sit on a
  // burst's worth of memory). The next thread to allocate gets exactly those first ones,
  // last freed first.
  std::vector<void*> freed = blocks_freed_elsewhere(RecycledMemory::kMaxReturned + 100);
  std::vector<void*> reused = allocated_by_new_thread(RecycledMemory::kMaxReturned);
  std::vector<void*> kept(freed.begin(), freed.begin() + RecycledMemory::kMaxReturned);
  CHECK(reused == std::vector<void*>(kept.rbegin(), kept.rend()));
}

TEST_CASE("a posted callable with an over-aligned capture runs from aligned memory", "[loop][queue]") {
  struct alignas(64) Wide {
    int value = 7;
  };
  BackgroundLoop loop({.name = "lb-aligned"});
  loop.start();
  std::atomic<bool> aligned{false};
  std::atomic<bool> ran{false};
  loop.post([wide = Wide(), &aligned, &ran] {
    aligned = reinterpret_cast<std::uintptr_t>(&wide) % 64 == 0 && wide.value == 7;
    ran = true;
  });
  REQUIRE(eventually([&] { return ran.load(); }));
  CHECK(aligned);
  loop.stop();
}

TEST_CASE("posts from many threads run once each while their memory is recycled", "[loop][queue]") {
  BackgroundLoop loop({.name = "lb-recycle"});
  loop.start();
  std::atomic<int> ran{0};
  std::vector<std::thread> hosts;
  for (int h = 0; h < 4; ++h) {
    hosts.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) loop.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
    });
  }
  for (auto& host : hosts) host.join();
  REQUIRE(eventually([&] { return ran.load() == 80'000; }));
  auto report = loop.stop();
  CHECK(report.completed == 80'000);
}

// RecycledMemory: the blocks of posted calls, freed on one thread and reused by the next
// posts of any thread, within a bound; and the posts that run from them.

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/detail/recycled_memory.hpp>

#include "support/deadline.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

using namespace loopbridge;
using namespace loopbridge::test;

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

TEST_CASE("a posted call's memory freed on the loop thread serves the next posts of any thread", "[loop][memory]") {
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

TEST_CASE("a thread keeps at most a bounded number of freed blocks for others to take", "[loop][memory]") {
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

TEST_CASE("a posted callable with an over-aligned capture runs from aligned memory", "[loop][memory]") {
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

TEST_CASE("posts from many threads run once each while their memory is recycled", "[loop][memory]") {
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

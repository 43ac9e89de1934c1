#include <loopbridge/loop/detail/recycled_memory.hpp>

#include <atomic>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_HWADDRESS__)
#define LOOPBRIDGE_RECYCLE_MEMORY 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(hwaddress_sanitizer)
#define LOOPBRIDGE_RECYCLE_MEMORY 0
#endif
#endif
#ifndef LOOPBRIDGE_RECYCLE_MEMORY
#define LOOPBRIDGE_RECYCLE_MEMORY 1
#endif

namespace loopbridge::detail {
namespace {

struct FreeBlock {
  FreeBlock* next;
};

std::atomic<FreeBlock*> g_returned{nullptr};

// Plain thread_locals: still usable while the thread's (or, on the main thread, the
// program's static) destructors run, which may post.
thread_local FreeBlock* t_cached = nullptr;
thread_local std::size_t t_returned_unseen = 0;  // pushed since this thread last saw the stack empty
thread_local bool t_cache_closed = false;

// Frees the thread's cache when the thread ends; from then on the thread allocates directly.
struct CacheCloser {
  bool opened = false;
  ~CacheCloser() {
    t_cache_closed = true;
    while (FreeBlock* block = t_cached) {
      t_cached = block->next;
      ::operator delete(block);
    }
  }
};
thread_local CacheCloser t_cache_closer;

}  // namespace

void* RecycledMemory::allocate(std::size_t size) {
  if (!LOOPBRIDGE_RECYCLE_MEMORY || size > kBlockSize) return ::operator new(size);
  if (t_cached == nullptr && !t_cache_closed && g_returned.load(std::memory_order_relaxed) != nullptr) {
    t_cache_closer.opened = true;  // registers the closer before the cache holds anything
    t_cached = g_returned.exchange(nullptr, std::memory_order_acquire);
  }
  if (FreeBlock* block = t_cached) {
    t_cached = block->next;
    return block;
  }
  return ::operator new(kBlockSize);
}

void RecycledMemory::deallocate(void* block, std::size_t size) noexcept {
  if (!LOOPBRIDGE_RECYCLE_MEMORY || size > kBlockSize) {
    ::operator delete(block);
    return;
  }
  FreeBlock* head = g_returned.load(std::memory_order_relaxed);
  if (head == nullptr) t_returned_unseen = 0;
  if (t_returned_unseen >= kMaxReturned) {
    ::operator delete(block);
    return;
  }
  auto* freed = ::new (block) FreeBlock{head};
  while (!g_returned.compare_exchange_weak(head, freed, std::memory_order_release, std::memory_order_relaxed)) {
    freed->next = head;
  }
  ++t_returned_unseen;
}

bool RecycledMemory::recycling() noexcept { return LOOPBRIDGE_RECYCLE_MEMORY; }

}  // namespace loopbridge::detail

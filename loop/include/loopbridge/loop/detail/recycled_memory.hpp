#pragma once

#include <cstddef>

namespace loopbridge::detail {

/// Memory for small objects that one thread makes and another frees: posted calls, made by
/// the posting thread and freed by the loop thread.
/**
 * malloc serves a block freed on another thread slowly: the freeing thread's cache keeps a
 * few, the rest go back to the allocating thread's arena under its lock, and the allocating
 * thread finds its own cache empty. Here a freed block goes onto one process-wide stack
 * instead, which an allocating thread takes whole into a cache of its own. Each freeing
 * thread stops pushing after kMaxReturned blocks that nobody took (it frees them instead),
 * so an idle process holds at most that many per freeing thread, plus what thread caches
 * took; a thread's cache is freed when the thread ends. Larger objects, and every object
 * when loopbridge itself is built with AddressSanitizer (which must see each free to catch
 * a use after it), go to operator new and delete as usual.
 *
 * @par Thread safety
 * Any thread. The stack is only pushed to and taken whole, never popped one block at a time,
 * so a block coming back to it while another thread pushes cannot confuse it (no ABA).
 */
struct RecycledMemory {
  static constexpr std::size_t kBlockSize = 128;
  static constexpr std::size_t kMaxReturned = 256;

  /// A block of at least `size` bytes; throws std::bad_alloc.
  static void* allocate(std::size_t size);
  /// Gives back a block allocate(size) returned.
  static void deallocate(void* block, std::size_t size) noexcept;
  /// False where blocks go straight to operator new and delete (AddressSanitizer and
  /// HWAddressSanitizer builds of loopbridge).
  static bool recycling() noexcept;
};

}  // namespace loopbridge::detail

#pragma once

// Allocation-failure injection for a test executable that links alloc_injection.cpp, which
// replaces the global operator new and aligned_alloc (what Asio allocates its handlers
// with). Armed on a thread, the n-th allocation that thread makes fails: operator new
// throws std::bad_alloc, aligned_alloc returns null (and Asio throws std::bad_alloc).

#include <string>

namespace loopbridge::test {

/// Arms the calling thread: its `nth` allocation from now (0: the next) fails.
class FailAllocation {
public:
  explicit FailAllocation(long nth);
  ~FailAllocation();
  FailAllocation(const FailAllocation&) = delete;
  FailAllocation& operator=(const FailAllocation&) = delete;
  /// Whether the armed allocation has failed yet (on this thread).
  static bool fired();
};

/// The loopbridge functions on the stack of the last injected failure, innermost first
/// (" [at a < b < c]"), or empty. Needs the executable's symbols exported (ENABLE_EXPORTS).
std::string failure_site();

}  // namespace loopbridge::test

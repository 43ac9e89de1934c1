#pragma once

// Counts something from the moment it begins to the moment it ends, however it ends (a
// return, an exception, a cancelled coroutine unwinding): a gauge of what is in flight.

#include <atomic>

namespace examples {

template <class Integer>
class ScopedCount {
public:
  explicit ScopedCount(std::atomic<Integer>& gauge) : gauge_(gauge) { ++gauge_; }
  ~ScopedCount() { --gauge_; }
  ScopedCount(const ScopedCount&) = delete;
  ScopedCount& operator=(const ScopedCount&) = delete;

private:
  std::atomic<Integer>& gauge_;
};

}  // namespace examples

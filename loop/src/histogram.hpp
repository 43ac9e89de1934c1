#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace loopbridge::detail {

/// A log-scale histogram of durations in nanoseconds: 8 buckets per power of two, so a
/// percentile read from it is within 1/8 of the true value. One writer (the loop thread),
/// any number of readers, no locks.
class DurationHistogram {
public:
  static constexpr std::size_t kBuckets = 8 + 61 * 8;
  using Counts = std::array<std::uint64_t, kBuckets>;

  void record(std::chrono::nanoseconds duration) noexcept;
  Counts snapshot() const noexcept;
  std::chrono::nanoseconds max() const noexcept { return std::chrono::nanoseconds(max_.load(std::memory_order_relaxed)); }
  /// The value below which a fraction `p` of the recorded durations fall (the bucket's
  /// upper bound); zero when nothing was recorded.
  static std::chrono::nanoseconds percentile(const Counts& counts, double p) noexcept;

private:
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::int64_t> max_{0};
};

}  // namespace loopbridge::detail

#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace loopbridge::detail {

void DurationHistogram::record(std::chrono::nanoseconds duration) noexcept {
  const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(duration.count(), 0));
  std::size_t index = ns;
  if (ns >= 8) {
    const int msb = std::bit_width(ns) - 1;  // >= 3
    index = 8 + static_cast<std::size_t>(msb - 3) * 8 + ((ns >> (msb - 3)) & 7);
  }
  auto& bucket = counts_[index];
  bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (static_cast<std::int64_t>(ns) > max_.load(std::memory_order_relaxed)) {
    max_.store(static_cast<std::int64_t>(ns), std::memory_order_relaxed);
  }
}

DurationHistogram::Counts DurationHistogram::snapshot() const noexcept {
  Counts counts{};
  for (std::size_t i = 0; i < kBuckets; ++i) counts[i] = counts_[i].load(std::memory_order_relaxed);
  return counts;
}

std::chrono::nanoseconds DurationHistogram::percentile(const Counts& counts, double p) noexcept {
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0) return std::chrono::nanoseconds(0);
  const auto rank = static_cast<std::uint64_t>(p * static_cast<double>(total - 1)) + 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen < rank) continue;
    if (i < 8) return std::chrono::nanoseconds(i);
    const std::size_t shift = (i - 8) / 8;
    const std::uint64_t upper = ((8 + (i - 8) % 8 + 1) << shift) - 1;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::min<std::uint64_t>(upper, INT64_MAX)));
  }
  return std::chrono::nanoseconds(0);
}

}  // namespace loopbridge::detail

// DurationHistogram, the engine's log-scale histogram behind the lag percentiles of
// LoopStats: what it records, the bounds it reads back, and its edges.

#include "histogram.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <numeric>
#include <thread>
#include <vector>

using loopbridge::detail::DurationHistogram;
using std::chrono::nanoseconds;

namespace {

/// The sum of a snapshot's buckets: how many durations it holds.
std::uint64_t recorded_in(const DurationHistogram::Counts& counts) {
  return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
}

/// The bound the histogram gives for one duration recorded alone.
nanoseconds bound_of(nanoseconds value) {
  DurationHistogram histogram;
  histogram.record(value);
  return DurationHistogram::percentile(histogram.snapshot(), 0.5);
}

/// Durations across the whole range: each power of two, its neighbours, and a point
/// inside each eighth of it.
std::vector<std::int64_t> durations_to_try() {
  std::vector<std::int64_t> values;
  for (std::int64_t v = 0; v < 64; ++v) values.push_back(v);
  for (int bit = 6; bit < 63; ++bit) {
    const std::int64_t power = std::int64_t{1} << bit;
    values.push_back(power - 1);
    values.push_back(power);
    values.push_back(power + 1);
    for (std::int64_t eighth = 1; eighth < 8; ++eighth) values.push_back(power + eighth * (power / 8) + 3);
  }
  values.push_back(std::numeric_limits<std::int64_t>::max());
  return values;
}

}  // namespace

TEST_CASE("an empty histogram reads zero for every percentile and for its maximum", "[histogram]") {
  DurationHistogram histogram;
  const auto counts = histogram.snapshot();
  CHECK(recorded_in(counts) == 0);
  CHECK(histogram.max() == nanoseconds::zero());
  for (double p : {0.0, 0.5, 0.99, 1.0}) CHECK(DurationHistogram::percentile(counts, p) == nanoseconds::zero());
}

TEST_CASE("durations under 8 ns are kept exactly", "[histogram]") {
  for (std::int64_t v = 0; v < 8; ++v) {
    CAPTURE(v);
    CHECK(bound_of(nanoseconds(v)) == nanoseconds(v));
  }
}

TEST_CASE("the bound read back for a duration is at least the duration and within 1/8 above it", "[histogram]") {
  for (std::int64_t v : durations_to_try()) {
    const std::int64_t bound = bound_of(nanoseconds(v)).count();
    CAPTURE(v, bound);
    CHECK(bound >= v);
    CHECK(bound - v <= v / 8);
  }
}

TEST_CASE("the bounds grow with the duration and each bucket's bound is its last value", "[histogram]") {
  nanoseconds previous{-1};
  for (std::int64_t v : durations_to_try()) {
    const nanoseconds bound = bound_of(nanoseconds(v));
    CAPTURE(v, bound.count());
    CHECK(bound >= previous);
    previous = bound;
    // The bound falls in the same bucket as the duration; one past it, in the next one.
    CHECK(bound_of(bound) == bound);
    if (bound < nanoseconds::max()) CHECK(bound_of(bound + nanoseconds(1)) > bound);
  }
}

TEST_CASE("percentiles of many durations fall within 1/8 of the true ranks", "[histogram]") {
  DurationHistogram histogram;
  // 1 µs to 1000 µs, one each, recorded out of order.
  for (int i = 0; i < 1000; ++i) histogram.record(std::chrono::microseconds((i * 617) % 1000 + 1));
  const auto counts = histogram.snapshot();
  REQUIRE(recorded_in(counts) == 1000);
  // The rank of p among n durations is floor(p * (n - 1)) + 1: 1 for p = 0, n for p = 1.
  const std::pair<double, std::int64_t> expected[] = {{0.0, 1}, {0.5, 500}, {0.9, 900}, {0.99, 990}, {1.0, 1000}};
  for (auto [p, micros] : expected) {
    const auto truth = std::chrono::duration_cast<nanoseconds>(std::chrono::microseconds(micros)).count();
    const auto got = DurationHistogram::percentile(counts, p).count();
    CAPTURE(p, truth, got);
    CHECK(got >= truth);
    CHECK(got - truth <= truth / 8);
  }
  CHECK(histogram.max() == std::chrono::microseconds(1000));
}

TEST_CASE("the maximum is exact and never goes down", "[histogram]") {
  DurationHistogram histogram;
  histogram.record(nanoseconds(12'345));
  CHECK(histogram.max() == nanoseconds(12'345));  // exact, where its bucket is not
  histogram.record(nanoseconds(999));
  CHECK(histogram.max() == nanoseconds(12'345));
  histogram.record(nanoseconds(12'346));
  CHECK(histogram.max() == nanoseconds(12'346));
}

TEST_CASE("a negative duration counts as zero", "[histogram][bad-input]") {
  DurationHistogram histogram;
  histogram.record(nanoseconds(-5));
  histogram.record(nanoseconds::min());
  const auto counts = histogram.snapshot();
  CHECK(counts[0] == 2);
  CHECK(recorded_in(counts) == 2);
  CHECK(histogram.max() == nanoseconds::zero());
  CHECK(DurationHistogram::percentile(counts, 1.0) == nanoseconds::zero());
}

TEST_CASE("the largest duration is kept in range and reads back as itself", "[histogram][bad-input]") {
  DurationHistogram histogram;
  histogram.record(nanoseconds::max());
  histogram.record(std::chrono::duration_cast<nanoseconds>(std::chrono::hours(24 * 365 * 100)));  // a century
  histogram.record(nanoseconds(1));
  const auto counts = histogram.snapshot();
  CHECK(recorded_in(counts) == 3);
  CHECK(histogram.max() == nanoseconds::max());
  CHECK(DurationHistogram::percentile(counts, 1.0) == nanoseconds::max());
  CHECK(DurationHistogram::percentile(counts, 0.0) == nanoseconds(1));
  const auto century = DurationHistogram::percentile(counts, 0.5);
  CHECK(century >= std::chrono::hours(24 * 365 * 100));
  CHECK(century < nanoseconds::max());
}

TEST_CASE("a snapshot taken while durations are recorded never loses a count", "[histogram][threads]") {
  // One writer (the loop thread) and a reader (stats() on any thread), without locks.
  DurationHistogram histogram;
  constexpr int kRecords = 200'000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kRecords; ++i) histogram.record(nanoseconds(i % 5000));
    done = true;
  });
  std::uint64_t previous = 0;
  bool shrank = false;
  while (!done.load()) {
    const std::uint64_t now = recorded_in(histogram.snapshot());
    shrank = shrank || now < previous;
    previous = now;
  }
  writer.join();
  CHECK_FALSE(shrank);
  CHECK(recorded_in(histogram.snapshot()) == kRecords);
  CHECK(histogram.max() == nanoseconds(4999));
}

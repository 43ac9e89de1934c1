#pragma once

#include "histogram.hpp"

#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/stats.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace loopbridge::detail {

/// A loop's counts of outcomes (submissions are Admission's). Read anywhere without a lock.
/// Outcomes are written by the loop thread only (a store of load + 1, no read-modify-write);
/// what host threads count (refusals, reported errors) uses fetch_add, on a cache line of
/// its own.
class Counters {
public:
  /// What the loop thread counts, one at a time.
  enum class Outcome { completed, failed, cancelled, abandoned };

  /// One reading of every count: what LoopStats, ShutdownReport and a LoopPool's sums are
  /// made from.
  struct Snapshot {
    std::uint64_t submitted = 0, completed = 0, failed = 0, cancelled = 0, abandoned = 0, rejected = 0,
                  rejected_full = 0, running = 0, stalls = 0, errors_reported = 0, abandoned_workers = 0;
    std::chrono::nanoseconds longest_handler{0}, uptime{0}, lag_max{0};
    DurationHistogram::Counts lag{};

    /// A LoopPool's sum: counts added, maxima and uptime the largest.
    Snapshot& operator+=(const Snapshot& other) noexcept;
    /// `queued` and `queue_depth` come from the loop's admission and queue.
    LoopStats to_stats(std::uint64_t queued, std::size_t queue_depth) const noexcept;
    /// The counts of a ShutdownReport.
    void fill(ShutdownReport& report) const noexcept;
  };

  /// Every count but `submitted`, which the caller reads after it (Admission): a snapshot
  /// taken while work moves then errs on the side of submitted >= the sum of the rest.
  Snapshot snapshot() const noexcept;

  // ---- any thread ----
  void rejected(bool queue_full = false) noexcept;
  void error_reported() noexcept { errors_reported_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t errors_reported() const noexcept { return errors_reported_.load(std::memory_order_relaxed); }
  std::uint64_t running() const noexcept { return running_.load(std::memory_order_relaxed); }

  // ---- loop thread ----
  void count(Outcome outcome) noexcept;
  /// A task counted completed whose value could not be stored after all.
  void recount_completed_as_failed() noexcept;
  void running_delta(std::int64_t delta) noexcept;
  void stalled() noexcept { bump(stalls_); }
  void record_lag(std::chrono::nanoseconds lag) noexcept { lag_.record(lag); }
  void record_stretch(std::chrono::nanoseconds duration) noexcept;
  void set_abandoned_workers(std::uint64_t count) noexcept { abandoned_workers_.store(count, std::memory_order_relaxed); }
  /// Uptime counts from here.
  void mark_started(std::chrono::steady_clock::time_point at) noexcept;

private:
  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  alignas(64) std::atomic<std::uint64_t> rejected_{0}, rejected_full_{0}, errors_reported_{0};
  alignas(64) std::atomic<std::uint64_t> completed_{0}, failed_{0}, cancelled_{0}, abandoned_{0}, running_{0},
      stalls_{0}, abandoned_workers_{0};
  std::atomic<std::int64_t> longest_stretch_ns_{0};
  std::atomic<std::int64_t> started_at_ns_{0};  // steady_clock, since its epoch; 0 before start
  DurationHistogram lag_;
};

}  // namespace loopbridge::detail

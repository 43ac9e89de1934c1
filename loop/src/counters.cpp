#include "counters.hpp"

#include <algorithm>

namespace loopbridge::detail {

using Clock = std::chrono::steady_clock;

Counters::Snapshot Counters::snapshot() const noexcept {
  auto load = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  Snapshot s;
  s.completed = load(completed_);
  s.failed = load(failed_);
  s.cancelled = load(cancelled_);
  s.abandoned = load(abandoned_);
  s.rejected = load(rejected_);
  s.rejected_full = load(rejected_full_);
  s.running = load(running_);
  s.stalls = load(stalls_);
  s.abandoned_workers = load(abandoned_workers_);
  s.errors_reported = load(errors_reported_);
  s.longest_handler = std::chrono::nanoseconds(longest_stretch_ns_.load(std::memory_order_relaxed));
  s.lag = lag_.snapshot();
  s.lag_max = lag_.max();
  const auto started = started_at_ns_.load(std::memory_order_relaxed);
  if (started != 0) {
    const Clock::time_point start_point{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(started))};
    s.uptime = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_point);
  }
  return s;
}

Counters::Snapshot& Counters::Snapshot::operator+=(const Snapshot& other) noexcept {
  submitted += other.submitted;
  completed += other.completed;
  failed += other.failed;
  cancelled += other.cancelled;
  abandoned += other.abandoned;
  rejected += other.rejected;
  rejected_full += other.rejected_full;
  running += other.running;
  stalls += other.stalls;
  errors_reported += other.errors_reported;
  abandoned_workers += other.abandoned_workers;
  longest_handler = std::max(longest_handler, other.longest_handler);
  uptime = std::max(uptime, other.uptime);
  lag_max = std::max(lag_max, other.lag_max);
  for (std::size_t i = 0; i < lag.size(); ++i) lag[i] += other.lag[i];
  return *this;
}

LoopStats Counters::Snapshot::to_stats(std::uint64_t queued, std::size_t queue_depth) const noexcept {
  LoopStats s;
  s.submitted = submitted;
  s.completed = completed;
  s.failed = failed;
  s.cancelled = cancelled;
  s.rejected = rejected;
  s.rejected_full = rejected_full;
  s.abandoned = abandoned;
  s.queued = queued;
  s.running = running;
  s.in_flight = queued + running;
  s.queue_depth = queue_depth;
  s.errors_reported = errors_reported;
  s.stalls = stalls;
  s.lag_p50 = DurationHistogram::percentile(lag, 0.50);
  s.lag_p99 = DurationHistogram::percentile(lag, 0.99);
  s.lag_max = lag_max;
  s.longest_handler = longest_handler;
  s.uptime = uptime;
  return s;
}

void Counters::Snapshot::fill(ShutdownReport& report) const noexcept {
  report.submitted = submitted;
  report.completed = completed;
  report.failed = failed;
  report.cancelled = cancelled;
  report.abandoned = abandoned;
  report.rejected = rejected;
  report.abandoned_workers = abandoned_workers;
}

void Counters::rejected(bool queue_full) noexcept {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  if (queue_full) rejected_full_.fetch_add(1, std::memory_order_relaxed);
}

void Counters::count(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::completed: bump(completed_); break;
    case Outcome::failed: bump(failed_); break;
    case Outcome::cancelled: bump(cancelled_); break;
    case Outcome::abandoned: bump(abandoned_); break;
  }
}

void Counters::recount_completed_as_failed() noexcept {
  completed_.store(completed_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  bump(failed_);
}

void Counters::running_delta(std::int64_t delta) noexcept {
  running_.store(running_.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(delta),
                 std::memory_order_relaxed);
}

void Counters::record_stretch(std::chrono::nanoseconds duration) noexcept {
  if (duration.count() > longest_stretch_ns_.load(std::memory_order_relaxed)) {
    longest_stretch_ns_.store(duration.count(), std::memory_order_relaxed);
  }
}

void Counters::mark_started(Clock::time_point at) noexcept {
  started_at_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count(),
                       std::memory_order_relaxed);
}

}  // namespace loopbridge::detail

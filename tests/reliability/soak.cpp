// The soak: random scenarios (scenario.hpp) back to back for a given time, checking every
// invariant after each and the process's threads, descriptors and resident memory against
// a baseline taken after a warm-up (and resident memory at the end against it). Stops by
// itself; exits 1 on the first violation.
//
// Usage: reliability_soak SECONDS [SEED]

#include "scenario.hpp"
#include "support/process.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

using namespace loopbridge;
using namespace loopbridge::test;
using Clock = std::chrono::steady_clock;

namespace {

bool settles_to(std::size_t baseline, std::size_t (*probe)()) {
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (probe() != baseline) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SECONDS [SEED]\n", argv[0]);
    return 2;
  }
  const auto budget = std::chrono::seconds(std::strtoll(argv[1], nullptr, 10));
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : std::random_device{}();
  std::printf("soak: %lld s, seed %llu\n", static_cast<long long>(budget.count()), static_cast<unsigned long long>(seed));
  std::fflush(stdout);

  const auto begin = Clock::now();
  std::size_t threads_baseline = 0, fds_baseline = 0, rss_baseline = 0, rss_peak = 0;
  std::uint64_t scenarios = 0, operations = 0, submissions = 0, faults = 0, values = 0, own_errors = 0,
                cancelled = 0, abandoned = 0, rejected = 0, timeouts = 0;
  for (std::uint64_t i = 0; Clock::now() - begin < budget; ++i) {
    std::mt19937_64 shape(seed + i);
    auto scenario = reliability::random_scenario(seed + i, 2 + shape() % 5, 50 + shape() % 300);
    auto outcome = reliability::run_scenario(scenario);
    if (!outcome.ok()) {
      std::fputs(outcome.describe(scenario).c_str(), stdout);
      std::printf("soak: FAILED after %llu scenarios; replay: reliability_soak 1 %llu\n",
                  static_cast<unsigned long long>(scenarios), static_cast<unsigned long long>(seed + i));
      return 1;
    }
    if (i == 2) {  // after a warm-up: allocator arenas and thread-local state exist now
      threads_baseline = thread_count();
      fds_baseline = fd_count();
      rss_baseline = rss_peak = resident_bytes();
    } else if (i > 2) {
      if (!settles_to(threads_baseline, thread_count) || !settles_to(fds_baseline, fd_count)) {
        std::printf("soak: FAILED: threads %zu (baseline %zu), descriptors %zu (baseline %zu) after seed %llu\n",
                    thread_count(), threads_baseline, fd_count(), fds_baseline,
                    static_cast<unsigned long long>(seed + i));
        return 1;
      }
      rss_peak = std::max(rss_peak, resident_bytes());
    }
    ++scenarios;
    operations += outcome.operations;
    submissions += outcome.submissions;
    faults += outcome.faults_injected;
    values += outcome.values;
    own_errors += outcome.own_errors;
    cancelled += outcome.cancelled;
    abandoned += outcome.abandoned;
    rejected += outcome.rejected;
    timeouts += outcome.run_timeouts;
    if (scenarios % 200 == 0) {
      std::printf("soak: %llu scenarios, %llu operations, %lld s\n", static_cast<unsigned long long>(scenarios),
                  static_cast<unsigned long long>(operations),
                  static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - begin).count()));
      std::fflush(stdout);
    }
  }
  const auto rss_end = resident_bytes();
  // Memory: after the warm-up, scenarios come and go; what they leave must not pile up.
  // The bound leaves room for the allocator's arenas and caches, not for a per-scenario leak.
  constexpr std::size_t kRssGrowthBound = std::size_t{16} << 20;
  if (scenarios > 3 && rss_end > rss_baseline + kRssGrowthBound) {
    std::printf("soak: FAILED: resident memory grew from %zu KiB to %zu KiB over %llu scenarios\n",
                rss_baseline / 1024, rss_end / 1024, static_cast<unsigned long long>(scenarios));
    return 1;
  }
  // One line of key=value figures, read by report.sh.
  std::printf(
      "soak: result seconds=%lld scenarios=%llu operations=%llu submissions=%llu faults=%llu values=%llu "
      "own_errors=%llu cancelled=%llu abandoned=%llu rejected=%llu run_timeouts=%llu violations=0 "
      "threads_baseline=%zu fds_baseline=%zu rss_baseline_kib=%zu rss_peak_kib=%zu rss_end_kib=%zu\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - begin).count()),
      static_cast<unsigned long long>(scenarios), static_cast<unsigned long long>(operations),
      static_cast<unsigned long long>(submissions), static_cast<unsigned long long>(faults),
      static_cast<unsigned long long>(values), static_cast<unsigned long long>(own_errors),
      static_cast<unsigned long long>(cancelled), static_cast<unsigned long long>(abandoned),
      static_cast<unsigned long long>(rejected), static_cast<unsigned long long>(timeouts), threads_baseline,
      fds_baseline, rss_baseline / 1024, rss_peak / 1024, rss_end / 1024);
  return 0;
}

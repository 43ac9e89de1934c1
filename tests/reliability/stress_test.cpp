// Randomized mixes of every operation from several host threads, ended by stop() or the
// destructor at a random moment; after each, the invariants of scenario.hpp, and no thread
// or descriptor left behind.

#include "figures.hpp"
#include "scenario.hpp"
#include "support/deadline.hpp"
#include "support/process.hpp"

#include <chrono>
#include <thread>

using namespace loopbridge;
using namespace loopbridge::test;
using loopbridge::reliability::Ending;

namespace {

// The value of `count` once it has not changed for 300 ms (at most kDeadline of waiting).
template <class Count>
std::size_t settled_count(Count count) {
  const auto give_up = std::chrono::steady_clock::now() + kDeadline;
  std::size_t value = count();
  auto unchanged_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - unchanged_since < std::chrono::milliseconds(300) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (const std::size_t now = count(); now != value) {
      value = now;
      unchanged_since = std::chrono::steady_clock::now();
    }
  }
  return value;
}

}  // namespace

TEST_CASE("randomized mixes from several host threads keep every invariant", "[reliability][stress]") {
  const std::uint64_t seed = chosen_seed("stress");
  // Sized for ThreadSanitizer on two cores: a few seconds there, under a second elsewhere.
  const std::size_t scenarios = kSanitized ? 150 : 400;
  const std::size_t ops_per_thread = kSanitized ? 80 : 120;

  // A first scenario warms up what a process creates once and keeps (a sanitizer's own
  // background thread, thread-local state); the baseline is taken after it.
  {
    auto warm_up = reliability::run_scenario(reliability::random_scenario(seed - 1, 2, ops_per_thread));
    INFO(warm_up.describe(reliability::random_scenario(seed - 1, 2, ops_per_thread)));
    CHECK(warm_up.ok());
  }
  // A thread the warm-up left to finish on its own (an offloaded function past its stop's
  // cancel deadline, detached) may still be exiting: the baseline is the count once it has
  // held still for a while, or every later comparison would be off by that thread.
  const std::size_t threads_before = settled_count(thread_count);
  const std::size_t fds_before = settled_count(fd_count);
  std::uint64_t operations = 0, submissions = 0, faults = 0, violations = 0;
  for (std::size_t i = 0; i < scenarios; ++i) {
    auto scenario = reliability::random_scenario(seed + i, 2 + i % 4, ops_per_thread);
    scenario.ending = i % 2 == 0 ? Ending::stop : Ending::destructor;
    auto outcome = reliability::run_scenario(scenario);
    INFO(outcome.describe(scenario));
    CHECK(outcome.ok());
    CHECK(eventually([&] { return thread_count() == threads_before; }));
    CHECK(eventually([&] { return fd_count() == fds_before; }));
    operations += outcome.operations;
    submissions += outcome.submissions;
    faults += outcome.faults_injected;
    violations += outcome.violations.size();
  }
  std::printf("stress: %zu scenarios, %llu operations, %llu submissions, %llu faults injected, %llu violations\n",
              scenarios, static_cast<unsigned long long>(operations), static_cast<unsigned long long>(submissions),
              static_cast<unsigned long long>(faults), static_cast<unsigned long long>(violations));
  record_figure("stress", "scenarios", scenarios);
  record_figure("stress", "operations", operations);
  record_figure("stress", "submissions", submissions);
  record_figure("stress", "faults", faults);
  record_figure("stress", "violations", violations);
}

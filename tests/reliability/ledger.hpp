#pragma once

// What the parties of a scenario record (the ledger), and the exception every deliberate
// fault throws. Internal to the scenario engine (scenario.cpp, workload.cpp).

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace loopbridge::reliability {

/// The exception every deliberate fault throws: anything else a task or run() reports is
/// either a loopbridge error with a meaning, or a violation.
struct Fault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What every task that completes returns.
inline constexpr int kValue = 7;

/// What every party of a scenario records. Shared (the loop thread, workers and detached
/// offloaded functions may touch it after the host threads have gone).
struct Ledger {
  using Count = std::atomic<std::uint64_t>;
  Count operations{0}, submissions{0};
  // Outcomes that a handle or a run() call told.
  Count values{0}, own_errors{0}, cancelled{0}, abandoned{0}, rejected{0}, run_timeouts{0};
  // Fire-and-forget posts.
  Count posts_accepted{0}, posts_refused_at_call{0}, posted_callables_finished{0}, posted_coroutines_finished{0};
  // What the error handler received, by context.
  Count errors_reported{0}, posted_failures{0}, posts_refused_in_queue{0}, failures_while_cancelled{0},
      hook_errors_reported{0};
  Count faults{0};
  Count stalls{0};  // stretches of loop work past the stall threshold (slow machines, sanitizers)

  std::mutex mutex;
  std::vector<std::string> violations;

  void violation(std::string what) {
    std::lock_guard lock(mutex);
    violations.push_back(std::move(what));
  }

  void fault() { faults.fetch_add(1, std::memory_order_relaxed); }
  [[noreturn]] void throw_fault(const char* where) {
    fault();
    throw Fault(where);
  }
};
using LedgerPtr = std::shared_ptr<Ledger>;

inline std::string what_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(std::move(error));
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
  }
}

}  // namespace loopbridge::reliability

#pragma once

// A randomized workload against one BackgroundLoop, and the invariants checked after it.
//
// Several host threads each run a list of operations (submit, post, cancel, cancel_all, run()
// with a deadline, call_host, to_thread, nested awaits, stop from inside a task) while a
// controller ends the loop (stop, destructor) once a chosen number of operations has been
// done. Afterwards every handle must have settled, and what the handles, run() calls, posts
// and the error handler saw must add up to the loop's own counts. Shared by the CI stress
// test, the soak program and the API fuzzer, so it uses no test framework: violations come
// back as text.

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace loopbridge::reliability {

/// One step a host thread takes against the loop.
enum class Op : std::uint8_t {
  submit_coroutine,   // a coroutine that sleeps up to 2 ms and returns a value
  submit_callable,    // a plain callable that returns a value
  submit_throwing,    // a coroutine or callable that throws its own error
  submit_stubborn,    // a coroutine that ignores the first cancellation for a few ms
  submit_nested,      // a coroutine that submits another task and co_awaits it
  post_coroutine,     // fire-and-forget coroutine (sometimes throwing)
  post_callable,      // fire-and-forget callable (sometimes throwing)
  cancel_one,         // cancel() on one of this thread's earlier handles
  cancel_all,         // cancel_all()
  run_quick,          // bridge run() of a short task with a generous deadline
  run_past_deadline,  // bridge run() of a task that never finishes, with a short deadline
  call_host,          // run() of a task that calls back into this host (sometimes throwing)
  to_thread,          // a task that offloads a function (sometimes throwing, stop-aware)
  wait_some,          // wait_for up to 1 ms on one of this thread's handles
  stop_from_task,     // a task that calls stop() on its own loop
  count
};

const char* op_name(Op op) noexcept;

/// How the loop's life ends while (or after) the host threads work.
enum class Ending : std::uint8_t {
  stop,        // BackgroundLoop::stop() from the controller thread
  destructor,  // the BackgroundLoop is destroyed; the hosts go on with LoopHandles
  count
};

struct StopPlan {
  std::chrono::nanoseconds drain{0};
  std::chrono::nanoseconds cancel{std::chrono::seconds(5)};
};

struct Scenario {
  std::uint64_t seed = 0;
  /// One list of operations per host thread.
  std::vector<std::vector<Op>> threads;
  Ending ending = Ending::stop;
  /// The loop ends once this many operations (all threads together) have been done.
  std::size_t end_after_ops = 0;
  StopPlan stop;
  /// An on_stop hook that throws, and one that sleeps briefly.
  bool throwing_stop_hook = false;
  /// The error handler throws every third call (it must not matter).
  bool throwing_error_handler = false;
  /// Longest sleep of the coroutines, in microseconds (the fuzzer keeps it short).
  std::uint32_t max_sleep_us = 2000;
};

/// A scenario drawn from `seed`: `threads` host threads of `ops_per_thread` operations.
Scenario random_scenario(std::uint64_t seed, std::size_t threads, std::size_t ops_per_thread);

/// What one run did, and what it found wrong.
struct Outcome {
  // Operations and their results, as the host threads saw them.
  std::uint64_t operations = 0;
  std::uint64_t submissions = 0;  // submit(), post() and run() calls the loop counted
  std::uint64_t values = 0, own_errors = 0, cancelled = 0, abandoned = 0, rejected = 0;
  std::uint64_t run_timeouts = 0;
  std::uint64_t posts_accepted = 0, posts_refused_at_call = 0;
  std::uint64_t faults_injected = 0;  // exceptions thrown on purpose (tasks, hooks, handlers, offloads, host calls)
  std::uint64_t errors_reported = 0;  // calls of the error handler
  // The loop's own count of submissions (LoopHandle::stats()).
  std::uint64_t loop_submitted = 0;
  std::chrono::nanoseconds end_duration{0};  // how long the stop or destructor took
  std::vector<std::string> violations;

  bool ok() const noexcept { return violations.empty(); }
  /// The violations, one per line, after a line naming the seed.
  std::string describe(const Scenario& scenario) const;
};

struct Limits {
  /// How long, after the loop ended, a handle may take to settle.
  std::chrono::milliseconds settle = std::chrono::seconds(10);
  /// How long the stop or destructor may take (the plan's deadlines plus this).
  std::chrono::milliseconds end_margin = std::chrono::seconds(5);
};

/// Runs the scenario and checks every invariant. Thread and descriptor counts are the
/// caller's to compare (they are process-wide).
Outcome run_scenario(const Scenario& scenario, Limits limits = {});

}  // namespace loopbridge::reliability

// libFuzzer harness: the input is a scenario (tests/reliability/scenario.hpp), a list of
// API operations spread over a few host threads and a moment to end the loop at. Every
// invariant the stress test checks is checked here; a violation aborts, which libFuzzer
// reports with the input that caused it.
//
// Input layout: byte 0 = shape (threads, ending, faulty hook and handler, cancel deadline),
// byte 1 = when the loop ends (a fraction of all operations), then one byte per operation
// (low 2 bits: thread, the rest: which operation).

#include "scenario.hpp"
#include "support/process.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

using namespace loopbridge::reliability;

namespace {

constexpr std::size_t kMaxOperations = 96;

std::uint64_t fnv1a(const std::uint8_t* data, std::size_t size) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

Scenario decode(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono_literals;
  Scenario s;
  s.seed = fnv1a(data, size);
  const std::uint8_t shape = data[0];
  s.threads.resize(1 + (shape & 3));
  s.ending = (shape >> 2) & 1 ? Ending::destructor : Ending::stop;
  s.throwing_stop_hook = (shape >> 3) & 1;
  s.throwing_error_handler = (shape >> 4) & 1;
  static constexpr std::chrono::nanoseconds kCancels[] = {5s, 1ms, 0ms, 5s};
  s.stop.cancel = kCancels[(shape >> 5) & 3];
  s.stop.drain = (shape >> 7) & 1 ? std::chrono::nanoseconds(1ms) : std::chrono::nanoseconds(0);
  s.max_sleep_us = 300;
  std::size_t total = 0;
  for (std::size_t i = 2; i < size && total < kMaxOperations; ++i, ++total) {
    const std::uint8_t b = data[i];
    s.threads[(b & 3) % s.threads.size()].push_back(static_cast<Op>((b >> 2) % static_cast<unsigned>(Op::count)));
  }
  s.end_after_ops = total * data[1] / 255;
  return s;
}

// The process's threads and descriptors must come back to where the first run left them.
std::size_t g_threads = 0, g_fds = 0;

bool settles_to(std::size_t baseline, std::size_t (*probe)()) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (probe() != baseline) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const Scenario scenario = decode(data, size);
  const Outcome outcome = run_scenario(scenario);
  if (!outcome.ok()) {
    std::fputs(outcome.describe(scenario).c_str(), stderr);
    std::abort();
  }
  if (g_threads == 0) {
    g_threads = loopbridge::test::thread_count();
    g_fds = loopbridge::test::fd_count();
  } else if (!settles_to(g_threads, loopbridge::test::thread_count) || !settles_to(g_fds, loopbridge::test::fd_count)) {
    std::fprintf(stderr, "threads %zu (first run: %zu), descriptors %zu (first run: %zu)\n",
                 loopbridge::test::thread_count(), g_threads, loopbridge::test::fd_count(), g_fds);
    std::abort();
  }
  return 0;
}

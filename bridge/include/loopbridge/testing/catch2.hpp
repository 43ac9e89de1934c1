#pragma once

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/detail/deadline.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

/// @file
/// Catch2 (2.x) test hygiene for code that uses loopbridge: a test fails, with a clear
/// message and the list of tasks in flight, when it leaves a loop running, leaves tasks in
/// flight on a loop that outlives it, or runs past its deadline; and it always finishes.

namespace loopbridge::testing {

/// A Catch2 fixture that checks a test's loops; use it through LOOPBRIDGE_TEST_CASE.
/**
 * At the end of the test it fails the test when
 * - a loop created during the test is still running (it forgot to stop it, or leaked it):
 *   the message names the loop and lists its tasks in flight, then the loop is stopped so
 *   that the process can go on;
 * - a loop that existed before the test has more tasks in flight than when it began
 *   (work the test left behind on a shared loop, such as the default loop).
 *
 * A watchdog thread enforces the test's deadline (30 s, or the environment variable
 * LOOPBRIDGE_TEST_DEADLINE_MS, or set_deadline()): past it, it prints the tasks in flight
 * of every loop created during the test and stops those loops, so that whatever the test
 * blocks on (a get() with no deadline, say) settles and the test ends, failed, instead of
 * hanging the suite.
 *
 * @par Thread safety
 * One fixture per test, as Catch2 makes it.
 */
class LoopHygiene {
public:
  LoopHygiene() : deadline_(default_deadline()), expires_at_(detail::deadline_after(deadline_)) {
    for (const LoopHandle& loop : live_loops()) {
      baseline_.push_back({loop, loop.stats().in_flight});
      if (loop.id() > last_id_before_) last_id_before_ = loop.id();
    }
    watchdog_ = std::thread([this] { watch(); });
  }

  ~LoopHygiene() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
    if (expired_) {
      FAIL_CHECK("the test ran past its deadline of " << as_ms(deadline_)
                                                      << " ms; its loops were stopped (see the in-flight list above)");
    }
    for (const LoopHandle& loop : live_loops()) {
      if (loop.id() > last_id_before_) {
        FAIL_CHECK("loop '" << loop.name() << "' created by this test is still running at its end\n"
                            << in_flight_text(loop) << "(stop it, or let its BackgroundLoop go out of scope)");
        loop.request_stop(quick_stop());
        loop.wait_stopped(std::chrono::seconds(5));
      }
    }
    for (const auto& [loop, in_flight_before] : baseline_) {
      if (loop.state() == LoopState::stopped) continue;
      const auto in_flight = loop.stats().in_flight;
      if (in_flight > in_flight_before) {
        FAIL_CHECK("the test left " << (in_flight - in_flight_before) << " task(s) in flight on loop '" << loop.name()
                                    << "'\n"
                                    << in_flight_text(loop));
      }
    }
  }

  LoopHygiene(const LoopHygiene&) = delete;
  LoopHygiene& operator=(const LoopHygiene&) = delete;

protected:
  /// Changes this test's deadline (from the moment of the call); `milliseconds::max()` is no
  /// limit. Throws InvalidArgument for a deadline that is not positive.
  void set_deadline(std::chrono::milliseconds deadline) {
    if (deadline <= std::chrono::milliseconds::zero()) throw InvalidArgument("a test deadline must be positive");
    const auto expires_at = detail::deadline_after(deadline);
    {
      std::lock_guard lock(mutex_);
      deadline_ = deadline;
      expires_at_ = expires_at;
    }
    wake_.notify_all();
  }

private:
  struct Baseline {
    LoopHandle loop;
    std::uint64_t in_flight;
  };

  static std::chrono::milliseconds default_deadline() {
    const char* env = std::getenv("LOOPBRIDGE_TEST_DEADLINE_MS");
    if (env == nullptr || *env == '\0') return std::chrono::seconds(30);
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(env, &end, 10);
    if (*end != '\0' || value <= 0 || errno == ERANGE) {
      throw InvalidArgument(std::string("LOOPBRIDGE_TEST_DEADLINE_MS must be a positive whole number of milliseconds, not '") +
                            env + "'");
    }
    return std::chrono::milliseconds(value);
  }

  static StopOptions quick_stop() {
    StopOptions options;
    options.cancel_timeout = std::chrono::seconds(1);
    options.hook_timeout = std::chrono::seconds(1);
    return options;
  }

  static long long as_ms(std::chrono::milliseconds d) { return static_cast<long long>(d.count()); }

  static std::string in_flight_text(const LoopHandle& loop) {
    std::ostringstream out;
    try {
      auto list = loop.in_flight();
      if (list.wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
        out << "  (its thread is busy: no list within 1 s; longest handler so far "
            << std::chrono::duration_cast<std::chrono::milliseconds>(loop.stats().longest_handler).count() << " ms)\n";
        return out.str();
      }
      auto tasks = list.get();
      out << "  " << tasks.size() << " task(s) in flight\n";
      for (const TaskInfo& task : tasks) out << "  - " << task.to_string() << "\n";
    } catch (const std::exception& e) {
      out << "  (no list: " << e.what() << ")\n";
    }
    return out.str();
  }

  void watch() {
    std::unique_lock lock(mutex_);
    while (!done_) {
      if (wake_.wait_until(lock, expires_at_) == std::cv_status::timeout && !done_ &&
          std::chrono::steady_clock::now() >= expires_at_) {
        expired_ = true;
        lock.unlock();
        stop_new_loops();
        return;
      }
    }
  }

  void stop_new_loops() {
    for (const LoopHandle& loop : live_loops()) {
      if (loop.id() <= last_id_before_) continue;
      std::cerr << "loopbridge: test deadline passed; stopping loop '" << loop.name() << "'\n" << in_flight_text(loop);
      loop.request_stop(quick_stop());
    }
  }

  std::vector<Baseline> baseline_;
  std::uint64_t last_id_before_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::chrono::milliseconds deadline_;
  std::chrono::steady_clock::time_point expires_at_;
  bool done_ = false;
  std::atomic<bool> expired_{false};
  std::thread watchdog_;
};

}  // namespace loopbridge::testing

/// A Catch2 TEST_CASE whose loops are checked by loopbridge::testing::LoopHygiene.
#define LOOPBRIDGE_TEST_CASE(...) TEST_CASE_METHOD(::loopbridge::testing::LoopHygiene, __VA_ARGS__)

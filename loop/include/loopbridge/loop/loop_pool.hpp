#pragma once

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/source_location.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace loopbridge {

/// How a LoopPool is set up.
struct PoolOptions {
  /// How many loops; zero means one per CPU the constructing thread may run on: its
  /// affinity mask (a cpuset, taskset or container's CPU list narrows it), capped by the
  /// cgroup CPU quota rounded up (`docker run --cpus=1.5` gives 2), as Rust's
  /// available_parallelism does.
  std::size_t loops = 0;
  /// The options of every loop. Each loop is named `name` followed by its index ("pool0",
  /// "pool1", ...); its thread's system name is the first 15 bytes of that (LoopOptions::name).
  LoopOptions loop{};
};

/// N BackgroundLoops used as one: round-robin or keyed submission, stop, cancel-all and
/// metrics across all of them (Tokio's multi-threaded runtime, folly's IOThreadPoolExecutor).
/**
 * Each submission goes to one loop and stays there: a task never migrates, so Asio objects
 * it creates live on its loop. submit() spreads work round robin; submit_keyed() sends the
 * same key to the same loop every time (affinity: one connection, one user, one shard).
 *
 * @par Thread safety
 * Distinct objects: safe. Shared objects: safe, all of it from any thread (start() and
 * stop() serialise among themselves). Blocking calls (stop(), cancel_all_and_wait()) on any
 * loop thread throw DeadlockError before they touch a loop: a refused call has no effect.
 *
 * @par After stop
 * As a single loop's: submissions settle with LoopStopped, post() throws LoopStopped.
 */
class LoopPool {
public:
  /// Creates the loops; nothing runs until start(). Throws InvalidArgument as
  /// BackgroundLoop does for bad options.
  explicit LoopPool(PoolOptions options = {});
  /// Stops every loop with its destructor deadlines, all at once.
  ~LoopPool();

  LoopPool(const LoopPool&) = delete;
  LoopPool& operator=(const LoopPool&) = delete;

  /// Adds the hooks to every loop (a copy each), as BackgroundLoop::on_start_stop() does;
  /// inside, current_loop() tells which loop runs it. Before start().
  void on_start_stop(const Hook& start, const Hook& stop);

  /// Starts every loop; returns once all run. If one fails to start, the others are
  /// stopped and its error is rethrown. Throws InvalidState, with no effect, when start()
  /// was called before (from any thread).
  void start();

  /// Stops every loop at once (each with `options`) and joins them; returns the sum of
  /// their reports (durations: the longest; joined: all of them). Throws DeadlockError on a
  /// loop thread and InvalidArgument for a negative deadline, before any loop is touched.
  ShutdownReport stop(StopOptions options = {});

  /// Cancels every task in flight on every loop and waits (up to `timeout`; 10 s if none is
  /// given) until they have unwound; returns how many this call cancelled (as
  /// LoopHandle::cancel_all() counts them). Named after
  /// TaskHandle::cancel_and_wait(): it blocks, where LoopHandle::cancel_all() returns a
  /// handle at once. A timeout too large for the clock waits without limit.
  /// @par Throws
  /// Timeout past the deadline; InvalidArgument for a negative timeout (or one that is not a
  /// number), and DeadlockError on a loop thread, before cancelling anything.
  template <class Rep, class Period>
  std::size_t cancel_all_and_wait(std::chrono::duration<Rep, Period> timeout) {
    if (timeout < std::chrono::duration<Rep, Period>::zero()) {
      throw InvalidArgument("the LoopPool::cancel_all_and_wait() timeout must not be negative");
    }
    refuse_on_loop_thread("LoopPool::cancel_all_and_wait()");
    return cancel_all_until(detail::deadline_after(timeout));
  }
  /// As cancel_all_and_wait(10 s).
  std::size_t cancel_all_and_wait();

  /// The next loop in round-robin order.
  LoopHandle next() const noexcept;
  /// The loop a key maps to: the same key, the same loop, for the pool's life.
  template <class Key>
  LoopHandle for_key(const Key& key) const noexcept {
    return loop(index_for(std::hash<Key>{}(key)));
  }
  /// The loop at `index`, from 0 to size() - 1.
  LoopHandle loop(std::size_t index) const noexcept;
  /// How many loops the pool has.
  std::size_t size() const noexcept;

  /// submit() on the next loop in round-robin order, in LoopHandle::submit()'s shapes.
  template <class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  auto submit(F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {}, A6&& a6 = {},
              detail::CallSite where = source_location::current()) const {
    return next().submit(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),
                         std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6), where);
  }
  /// submit() on the loop `key` maps to: `submit_keyed(key, fn, args...)` and the other
  /// shapes of LoopHandle::submit() after the key.
  template <class Key, class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  auto submit_keyed(const Key& key, F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {},
                    A6&& a6 = {}, detail::CallSite where = source_location::current()) const {
    return for_key(key).submit(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),
                               std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6), where);
  }
  /// post() on the next loop in round-robin order, in LoopHandle::post()'s shapes.
  template <class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  void post(F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {}, A6&& a6 = {},
            detail::CallSite where = source_location::current()) const {
    next().post(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),
                std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6), where);
  }
  /// post() on the loop `key` maps to, in LoopHandle::post()'s shapes after the key.
  template <class Key, class F, class A1 = SubmitOptions, class A2 = detail::NoArg, class A3 = detail::NoArg,
            class A4 = detail::NoArg, class A5 = detail::NoArg, class A6 = detail::NoArg>
  void post_keyed(const Key& key, F&& fn, A1&& a1 = {}, A2&& a2 = {}, A3&& a3 = {}, A4&& a4 = {}, A5&& a5 = {},
                  A6&& a6 = {}, detail::CallSite where = source_location::current()) const {
    for_key(key).post(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),
                      std::forward<A4>(a4), std::forward<A5>(a5), std::forward<A6>(a6), where);
  }

  /// The loops' counters added up; lag percentiles over all their submissions, maxima the
  /// largest, uptime the longest.
  LoopStats stats() const;

private:
  std::size_t index_for(std::size_t hash) const noexcept;
  std::size_t cancel_all_until(std::chrono::steady_clock::time_point deadline);
  /// DeadlockError on a loop thread, before anything is touched.
  static void refuse_on_loop_thread(const char* what);

  std::vector<std::unique_ptr<BackgroundLoop>> loops_;
  mutable std::atomic<std::size_t> next_{0};
  std::atomic<bool> start_claimed_{false};
};

}  // namespace loopbridge

#pragma once

#include <loopbridge/loop/detail/handoff_call.hpp>
#include <loopbridge/loop/detail/task_state.hpp>

#include "platform/platform.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

namespace loopbridge::detail {

class LoopCore;

/// The bounded pool of threads a loop runs blocking work on (to_thread). Threads start on
/// demand up to the limit. Shared with its threads, so one that outlives the loop (a
/// function that would not return in time) keeps what it uses alive.
class WorkerPool : public std::enable_shared_from_this<WorkerPool> {
public:
  /// `owner`: the loop whose work the threads run (this_thread_work_owner() on them).
  WorkerPool(std::size_t max_threads, std::string thread_name, const LoopCore* owner);

  /// Queues a job (taking a reference). False once the pool has stopped.
  bool submit(HandoffCall& job);

  /// Refuses queued jobs, waits for running ones until `deadline`, then detaches the
  /// threads still busy. Returns how many were detached.
  std::size_t stop(std::chrono::steady_clock::time_point deadline);

  /// Waits until no thread runs a function (those a stop left running have returned), up to
  /// `deadline`; true if none does.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);

private:
  void worker_main() noexcept;

  const std::size_t max_threads_;
  const LoopCore* const owner_;
  const std::string thread_name_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<HandoffCall*> jobs_;
  std::vector<SystemThread> threads_;
  std::size_t idle_ = 0;
  std::size_t busy_ = 0;
  bool stopping_ = false;
};

}  // namespace loopbridge::detail

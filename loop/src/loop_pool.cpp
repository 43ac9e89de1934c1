#include <loopbridge/loop/loop_pool.hpp>

#include "loop_core.hpp"
#include "platform/platform.hpp"
#include "thread_roles.hpp"

#include <algorithm>
#include <string>

namespace loopbridge {
namespace {

detail::LoopCore& core_of(const BackgroundLoop& loop) {
  return detail::LoopCore::of(detail::LoopAccess::engine(loop));
}

// Spreads hashes of small consecutive keys (std::hash of an integer is the integer).
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

// Checked before any loop is touched: a refused call must have no effect.
void LoopPool::refuse_on_loop_thread(const char* what) {
  if (detail::this_thread_core() != nullptr) {
    throw DeadlockError(std::string(what) + " would block a loop thread until every loop of the pool is done");
  }
}

LoopPool::LoopPool(PoolOptions options) {
  std::size_t count = options.loops != 0 ? options.loops : detail::usable_cpus();
  loops_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    LoopOptions loop_options = options.loop;
    loop_options.name = options.loop.name + std::to_string(i);
    loops_.push_back(std::make_unique<BackgroundLoop>(std::move(loop_options)));
  }
}

LoopPool::~LoopPool() {
  // Every loop winds down at the same time; each destructor then only joins.
  for (auto& loop : loops_) {
    if (loop->state() != LoopState::created) loop->request_stop(core_of(*loop).options().destructor_stop);
  }
  loops_.clear();
}

void LoopPool::on_start_stop(const Hook& start, const Hook& stop) {
  for (auto& loop : loops_) {
    if (start && stop) {
      loop->on_start_stop(start, stop);
    } else if (start) {
      loop->on_start(start);
    } else {
      loop->on_stop(stop);
    }
  }
}

void LoopPool::start() {
  if (start_claimed_.exchange(true, std::memory_order_acq_rel)) {
    throw InvalidState("LoopPool::start() called again: a pool starts once");
  }
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    try {
      loops_[i]->start();
    } catch (...) {
      for (std::size_t j = 0; j < i; ++j) loops_[j]->request_stop();
      // Those never started become stopped too: their submissions settle LoopStopped.
      for (auto& loop : loops_) loop->stop();
      throw;
    }
  }
}

ShutdownReport LoopPool::stop(StopOptions options) {
  refuse_on_loop_thread("LoopPool::stop()");
  for (auto& loop : loops_) {
    if (loop->state() != LoopState::created) loop->request_stop(options);
  }
  ShutdownReport total;
  total.joined = true;
  detail::Counters::Snapshot counts;
  for (auto& loop : loops_) {
    ShutdownReport r = loop->stop(options);
    counts += core_of(*loop).snapshot();
    total.abandoned_tasks.insert(total.abandoned_tasks.end(), r.abandoned_tasks.begin(), r.abandoned_tasks.end());
    total.hook_errors.insert(total.hook_errors.end(), r.hook_errors.begin(), r.hook_errors.end());
    total.duration = std::max(total.duration, r.duration);
    total.joined = total.joined && r.joined;
  }
  counts.fill(total);
  return total;
}

std::size_t LoopPool::cancel_all_until(std::chrono::steady_clock::time_point deadline) {
  std::vector<TaskHandle<std::size_t>> groups;
  groups.reserve(loops_.size());
  for (auto& loop : loops_) groups.push_back(loop->cancel_all());
  std::size_t cancelled = 0;
  for (auto& group : groups) {
    if (group.wait_until(deadline) != std::future_status::ready) {
      throw Timeout("LoopPool::cancel_all_and_wait(): tasks were still unwinding at the deadline");
    }
    cancelled += group.get();
  }
  return cancelled;
}

std::size_t LoopPool::cancel_all_and_wait() { return cancel_all_and_wait(std::chrono::seconds(10)); }

LoopHandle LoopPool::loop(std::size_t index) const noexcept { return loops_[index]->handle(); }
std::size_t LoopPool::size() const noexcept { return loops_.size(); }

LoopHandle LoopPool::next() const noexcept {
  return loop(next_.fetch_add(1, std::memory_order_relaxed) % loops_.size());
}

std::size_t LoopPool::index_for(std::size_t hash) const noexcept { return mix(hash) % loops_.size(); }

LoopStats LoopPool::stats() const {
  detail::Counters::Snapshot counts;
  std::uint64_t queued = 0;
  std::size_t queue_depth = 0;
  for (auto& loop : loops_) {
    const detail::LoopCore& core = core_of(*loop);
    counts += core.snapshot();
    queued += core.queued();
    queue_depth += core.queue_depth();
  }
  return counts.to_stats(queued, queue_depth);
}

}  // namespace loopbridge

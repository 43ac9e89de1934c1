#include "worker_pool.hpp"

#include "thread_name.hpp"
#include "thread_roles.hpp"

namespace loopbridge::detail {

WorkerPool::WorkerPool(std::size_t max_threads, std::string thread_name, const LoopCore* owner)
    : max_threads_(max_threads), owner_(owner), thread_name_(std::move(thread_name)) {}

bool WorkerPool::submit(HandoffCall& job) {
  std::unique_lock lock(mutex_);
  if (stopping_) return false;
  jobs_.push_back(&job);  // before the reference: a deque may allocate on any push_back
  job.refs().add_ref();
  work_cv_.notify_one();
  // Idle threads already woken still count as idle until they take a job: start one more
  // whenever the queued jobs outnumber them, so no job waits behind another for a thread.
  if (jobs_.size() > idle_ && threads_.size() < max_threads_) {
    try {
      threads_.emplace_back([self = shared_from_this()] { self->worker_main(); });
    } catch (...) {
      if (!threads_.empty()) return true;  // the running threads will take it
      jobs_.pop_back();
      job.refs().release();
      throw;
    }
  }
  return true;
}

void WorkerPool::worker_main() noexcept {
  name_this_thread(thread_name_);
  exchange_this_thread_work_owner(owner_);
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    work_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) break;  // stopping, nothing left
    HandoffCall* job = jobs_.front();
    jobs_.pop_front();
    ++busy_;
    lock.unlock();
    exchange_this_thread_context(job->context);
    job->run();
    exchange_this_thread_context(nullptr);
    job->refs().release();
    lock.lock();
    --busy_;
    idle_cv_.notify_all();
  }
}

bool WorkerPool::wait_idle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return idle_cv_.wait_until(lock, deadline, [&] { return busy_ == 0; });
}

std::size_t WorkerPool::stop(std::chrono::steady_clock::time_point deadline) {
  std::deque<HandoffCall*> refused;
  std::vector<SystemThread> threads;
  std::size_t detached = 0;
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    refused.swap(jobs_);
    work_cv_.notify_all();
    idle_cv_.wait_until(lock, deadline, [&] { return busy_ == 0; });
    detached = busy_;
    threads.swap(threads_);
  }
  for (HandoffCall* job : refused) {
    job->refuse();
    job->refs().release();
  }
  for (auto& thread : threads) {
    // Busy threads past the deadline go on alone, holding the pool; the idle ones have
    // left their wait and end at once.
    if (detached > 0) {
      if (!thread.try_join_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(1))) thread.detach();
    } else {
      thread.join();
    }
  }
  return detached;
}

}  // namespace loopbridge::detail

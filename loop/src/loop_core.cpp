// The engine's construction, the host side of submissions and what any thread may ask it.

#include "loop_core.hpp"

#include "host_waiter.hpp"
#include "options_check.hpp"
#include "registry.hpp"
#include "thread_name.hpp"
#include "thread_roles.hpp"

#include <string>
#include <string_view>
#include <utility>

namespace loopbridge::detail {

void check_backend(boost::asio::io_context& io);  // backend.cpp

LoopCore::LoopCore(LoopOptions options, boost::asio::io_context* borrowed)
    : options_(checked(std::move(options))),
      serial_(Registry::next_serial()),
      io_(borrowed),
      admission_(options_, counters_),
      drain_(*this, io_.io(), !io_.owned(), options_.spin_before_sleep),
      reporting_(options_, counters_, drain_) {
  check_backend(io_.io());
  Registry::add(*this);
}

LoopCore::~LoopCore() { Registry::remove(*this); }

LoopState LoopCore::state() const noexcept {
  switch (phase()) {
    case Phase::created: return LoopState::created;
    case Phase::starting: return latches_.stop_requested() ? LoopState::stopping : LoopState::starting;
    case Phase::running: return latches_.stop_requested() ? LoopState::stopping : LoopState::running;
    case Phase::closed:  // every handle has settled; the thread only tears down what is left
    case Phase::stopped: return LoopState::stopped;
    default: return LoopState::stopping;
  }
}

bool LoopCore::runs_here() const noexcept { return this_thread_core() == this; }

void LoopCore::report_error(std::exception_ptr error, std::string_view context) noexcept {
  reporting_.error(std::move(error), context, runs_here());
}

Counters::Snapshot LoopCore::snapshot() const noexcept {
  Counters::Snapshot s = counters_.snapshot();
  s.submitted = admission_.submitted();  // last: see Counters::snapshot()
  return s;
}

LoopStats LoopCore::stats() const noexcept { return snapshot().to_stats(admission_.queued(), drain_.depth()); }

ShutdownReport LoopCore::report() const {
  ShutdownReport report;
  snapshot().fill(report);
  latches_.fill(report);
  return report;
}

WorkerPool& LoopCore::workers() {
  if (!workers_) {
    // The suffix stays within what the system keeps of a thread name.
    const std::string_view suffix = "-w";
    workers_ = std::make_shared<WorkerPool>(
        options_.worker_threads, std::string(utf8_prefix(options_.name, kOsThreadNameBytes - suffix.size())) += suffix,
        this);
  }
  return *workers_;
}

bool LoopCore::wait_released(std::chrono::steady_clock::time_point deadline) {
  if (!wait_finished(deadline)) return false;
  const std::shared_ptr<WorkerPool> pool = retired_workers_.lock();  // written before the finish latch opened
  return !pool || pool->wait_idle(deadline);
}

void LoopCore::check_started() const {
  if (phase() == Phase::created && !admission_.is_open()) {
    throw InvalidState("the loop has not been started: call start() first");
  }
}

bool LoopCore::submit(TaskBase& task, const SubmitOptions& options) {
  try {
    // The submitting host thread: the task's call_host() reaches it while it waits.
    task.host_waiter = this_thread_host_waiter();
    if (admission_.admit(options, this_thread_core() != nullptr)) {
      if (drain_.push(task)) return true;
      admission_.not_queued();
    }
  } catch (...) {
    if (task.claim_refusal()) task.drop_function();  // else its stop token cancelled it already
    task.state().release();                           // the queue's reference, never handed over
    throw;
  }
  reject_at_call(task);
  return false;
}

void LoopCore::post(std::unique_ptr<PostedCallBase> call, const SubmitOptions& options) {
  if (admission_.admit(options, this_thread_core() != nullptr)) {
    if (drain_.push(*call)) {
      call.release();  // the queue owns it now
      return;
    }
    admission_.not_queued();
  }
  throw refusal();
}

LoopStopped LoopCore::refusal() const {
  return LoopStopped(std::string("submission refused: ") +
                     (forked_away() ? kForkedAway : "the loop is stopping or stopped"));
}

Ref<TypedState<std::size_t>> LoopCore::cancel_all() {
  check_started();
  auto group = Ref<CancelAllState>::adopt(new CancelAllState());
  group->add_ref();  // the queue's
  if (!admission_.is_open() || !drain_.push(*group)) {
    group->release();
    group->set_value(std::size_t{0});
  }
  return group;
}

Ref<TypedState<std::vector<TaskInfo>>> LoopCore::query_in_flight() {
  check_started();
  auto query = Ref<InFlightQuery>::adopt(new InFlightQuery());
  query->add_ref();  // the queue's
  if (!drain_.push(*query)) {
    query->release();
    query->set_value(std::vector<TaskInfo>{});
  }
  return query;
}

IoBackend LoopCore::backend() const noexcept {
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
  return IoBackend::io_uring;
#elif defined(BOOST_ASIO_HAS_IOCP)
  return IoBackend::iocp;
#elif defined(BOOST_ASIO_HAS_KQUEUE)
  return IoBackend::kqueue;
#else
  return IoBackend::epoll;
#endif
}

}  // namespace loopbridge::detail

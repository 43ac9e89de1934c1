// LoopHandle's calls that are not templates.

#include "loop_core.hpp"

#include "options_check.hpp"
#include "registry.hpp"
#include "thread_roles.hpp"

namespace loopbridge {

using detail::LoopCore;

namespace {

LoopCore& core(const LoopHandle& handle) { return LoopCore::of(detail::LoopAccess::engine(handle)); }

}  // namespace

TaskHandle<std::size_t> LoopHandle::cancel_all() const {
  return TaskHandle<std::size_t>(core(*this).cancel_all(), core_);
}

void LoopHandle::check_submit_options(const SubmitOptions& options) {
  if (options.full_wait && *options.full_wait < std::chrono::nanoseconds::zero()) {
    throw InvalidArgument("SubmitOptions::full_wait must not be negative");
  }
}

LoopHandle::executor_type LoopHandle::get_executor() const { return core(*this).executor(); }

TaskHandle<std::vector<TaskInfo>> LoopHandle::in_flight() const {
  return TaskHandle<std::vector<TaskInfo>>(core(*this).query_in_flight(), core_);
}

LoopStats LoopHandle::stats() const { return core(*this).stats(); }

void LoopHandle::request_stop(StopOptions options) const {
  detail::check_stop_options(options);
  core(*this).request_stop(options);
}

bool LoopHandle::wait_stopped_until(std::chrono::steady_clock::time_point deadline) const {
  LoopCore& loop = core(*this);
  loop.check_not_forked_away();
  if (detail::this_thread_core() != nullptr) throw DeadlockError("wait_stopped() would block a loop thread");
  return loop.wait_finished(deadline);
}

std::uint64_t LoopHandle::id() const { return core(*this).serial(); }
LoopState LoopHandle::state() const { return core(*this).state(); }
std::size_t LoopHandle::queue_depth() const { return core(*this).queue_depth(); }
std::uint64_t LoopHandle::unhandled_errors() const { return core(*this).unhandled_errors(); }
std::string_view LoopHandle::name() const { return core(*this).name(); }
IoBackend LoopHandle::backend() const { return core(*this).backend(); }

std::vector<LoopHandle> live_loops() {
  std::vector<LoopHandle> loops;
  for (auto& loop : detail::Registry::live()) loops.push_back(LoopHandle(detail::Ref<detail::Engine>(std::move(loop))));
  return loops;
}

}  // namespace loopbridge

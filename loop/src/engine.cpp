// The boundary the public templates reach the engine through (detail/engine.hpp).

#include "loop_core.hpp"

#include "host_waiter.hpp"
#include "thread_roles.hpp"

namespace loopbridge::detail {

Engine* this_thread_engine() noexcept { return this_thread_core(); }

void check_started(Engine& engine) { LoopCore::of(engine).check_started(); }

bool submit_task(Engine& engine, TaskBase& task, const SubmitOptions& options) {
  return LoopCore::of(engine).submit(task, options);
}

void post_call(Engine& engine, std::unique_ptr<PostedCallBase> call, const SubmitOptions& options) {
  LoopCore::of(engine).post(std::move(call), options);
}

void throw_refused(const Engine& engine) { throw LoopCore::of(engine).refusal(); }

std::chrono::nanoseconds spin_before_sleep(const Engine& engine) noexcept {
  return LoopCore::of(engine).options().spin_before_sleep;
}

std::optional<std::exception_ptr> conclude(TaskBase& task, std::exception_ptr error) noexcept {
  return LoopCore::of(task).conclude(task, std::move(error));
}

void task_left(TaskBase& task) noexcept { LoopCore::of(task).task_left(task); }

void recount_completed_as_failed(TaskBase& task) noexcept {
  LoopCore::of(task).recount_completed_as_failed();
  task.finish(TaskStage::failed);
}

void escaped_task_stretch(TaskBase& task, std::exception_ptr error) noexcept {
  LoopCore::of(task).escaped_task_stretch(task, std::move(error));
}

boost::asio::io_context::executor_type loop_executor(Engine& engine) noexcept { return LoopCore::of(engine).executor(); }

void report_error(Engine& engine, std::exception_ptr error, std::string_view context) noexcept {
  LoopCore::of(engine).report_error(std::move(error), context);
}

bool push_command(Engine& engine, Command& command) noexcept { return LoopCore::of(engine).push(command); }

void register_wait(Engine& engine, PendingWait& wait) noexcept { LoopCore::of(engine).waits().add(wait); }

void unregister_wait(Engine& engine, PendingWait& wait) noexcept { LoopCore::of(engine).waits().remove(wait); }

bool offload(HandoffCall& job) { return this_thread_core()->workers().submit(job); }

bool post_to_host(TaskBase& task, HandoffCall& call) {
  call.context = task.context();
  call.owner = &task.engine();
  return static_cast<HostWaiter&>(*task.host_waiter).post(call);
}

HostCallScope::HostCallScope() : waiter_(this_thread_host_waiter()) {
  static_cast<HostWaiter&>(*waiter_).expect_calls();
}

HostCallScope::~HostCallScope() { static_cast<HostWaiter&>(*waiter_).stop_expecting_calls(); }

}  // namespace loopbridge::detail

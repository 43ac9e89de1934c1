#pragma once

#include <loopbridge/loop/detail/ref.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>

namespace loopbridge {
struct SubmitOptions;
}

namespace loopbridge::detail {

class Command;
class HandoffCall;
class PendingWait;
class PostedCallBase;
class StateBase;
class TaskBase;

/// The engine behind a loop: its queue, its io_context, its lifecycle. Defined in loop/src,
/// out of the include path: the public templates hold it through this base and reach it
/// through the functions below, and nothing else.
class Engine : public RefCounted {
protected:
  Engine() noexcept = default;
  ~Engine() override = default;
};

/// The engine whose loop thread runs the caller, or null.
Engine* this_thread_engine() noexcept;

// ---- Host side of a submission ----

/// InvalidState before start().
void check_started(Engine& engine);
/// Admits `task` and queues it with the reference the caller passes on (it also takes the
/// submitting thread as the task's host, for call_host). False when the loop no longer
/// takes work: the task is settled with LoopStopped and the reference came back. Throws
/// QueueFull (or std::bad_alloc): nothing was queued and the queue's reference is released.
bool submit_task(Engine& engine, TaskBase& task, const SubmitOptions& options);
/// Admits and queues a fire-and-forget call, which the queue owns from then on. Throws
/// LoopStopped when the loop no longer takes work, QueueFull when its queue is full.
void post_call(Engine& engine, std::unique_ptr<PostedCallBase> call, const SubmitOptions& options);
/// Throws the LoopStopped of a submission the loop refused (a post whose task
/// submit_task() turned away).
[[noreturn]] void throw_refused(const Engine& engine);
/// LoopOptions::spin_before_sleep, for the handles' waits.
std::chrono::nanoseconds spin_before_sleep(const Engine& engine) noexcept;

// ---- Loop side, for the tasks' templates ----

/// Records how a task ended; returns the exception to settle it with (null: its value), or
/// nothing when the stop settled it already (abandoned) and it must not be settled again.
std::optional<std::exception_ptr> conclude(TaskBase& task, std::exception_ptr error) noexcept;
/// After a concluded task has settled: it leaves the tasks in flight.
void task_left(TaskBase& task) noexcept;
/// A concluded task's value could not be stored after all: it failed.
void recount_completed_as_failed(TaskBase& task) noexcept;
/// An exception left a stretch of the task's coroutine (an operation that threw from its
/// initiation, after Asio gave the coroutine up): the task fails with it. Also reported.
void escaped_task_stretch(TaskBase& task, std::exception_ptr error) noexcept;
/// Runs `resume(context)` as one stretch of the task's coroutine on its loop thread: timed
/// (stall detection), with the task's context installed; not at all for a task the stop
/// gave up. The task outlives the stretch, in which its coroutine may end.
void run_stretch(TaskBase& task, void (*resume)(void*), void* context) noexcept;
/// The task whose coroutine runs on `executor` (the one this_coro::executor gives it), or
/// null.
TaskBase* task_of(const boost::asio::any_io_executor& executor) noexcept;
/// True when `state` is `task`'s own result.
bool is_task_state(const TaskBase* task, const StateBase& state) noexcept;
/// The loop's executor: the io_context's, untracked.
boost::asio::io_context::executor_type loop_executor(Engine& engine) noexcept;
/// Sends an error with no future to the loop's error handler, and counts it.
void report_error(Engine& engine, std::exception_ptr error, std::string_view context) noexcept;

// ---- Waits by coroutines on a loop (TaskHandle::async_wait) ----

/// Pushes a command; false if the queue is closed (the caller still owns it).
bool push_command(Engine& engine, Command& command) noexcept;
/// Keeps a wait known to its loop, which takes back those still registered at its stop.
void register_wait(Engine& engine, PendingWait& wait) noexcept;
void unregister_wait(Engine& engine, PendingWait& wait) noexcept;

// ---- Hand-offs (to_thread, call_host) ----

/// Queues `job` on the worker pool of the loop whose thread runs the caller. False once
/// that pool has stopped.
bool offload(HandoffCall& job);
/// Posts `call` to the host thread that submitted `task`, while it waits: false when it
/// does not.
bool post_to_host(TaskBase& task, HandoffCall& call);

/// Keeps the calling host thread ready to run its tasks' call_host() requests from its
/// construction to the end of the wait that follows (run(): submit, then wait).
class HostCallScope {
public:
  HostCallScope();
  ~HostCallScope();
  HostCallScope(const HostCallScope&) = delete;
  HostCallScope& operator=(const HostCallScope&) = delete;

private:
  Ref<RefCounted> waiter_;
};

}  // namespace loopbridge::detail

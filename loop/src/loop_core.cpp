#include <loopbridge/loop/detail/loop_core.hpp>
#include <loopbridge/loop/detail/task.hpp>

#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/post.hpp>

#include <cstdio>
#include <typeinfo>
#include <exception>

namespace loopbridge::detail {
namespace {

thread_local LoopCore* t_core = nullptr;

std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(std::move(error));
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
  }
}

// Whether a cancelled task ended with the cancellation itself (not reported) or with an
// error of its own (reported). Classified by type where the library allows it, without a
// rethrow: a stop cancelling thousands of tasks pays for every throw. An Asio error seen
// while cancelling is taken as the cancellation.
bool is_cancellation(const std::exception_ptr& error) {
#if defined(__GLIBCXX__)
  if (const std::type_info* type = error.__cxa_exception_type()) {
    return *type == typeid(boost::system::system_error) || *type == typeid(TaskCancelled);
  }
#endif
  try {
    std::rethrow_exception(error);
  } catch (const TaskCancelled&) {
    return true;
  } catch (const boost::system::system_error& e) {
    return e.code() == boost::asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

struct DrainHandler {
  LoopCore* core;
  void operator()() const noexcept { core->drain(); }
};

}  // namespace

LoopCore* this_thread_core() noexcept { return t_core; }

namespace {

// An allocator (plain std::allocator underneath) that carries the task it belongs to. Set
// as the allocator property of a task's executor, it tells task_of() which task runs there.
template <class T>
struct TaskAllocator {
  using value_type = T;
  TaskBase* task;

  explicit TaskAllocator(TaskBase* t) noexcept : task(t) {}
  template <class U>
  TaskAllocator(const TaskAllocator<U>& other) noexcept : task(other.task) {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(const TaskAllocator& a, const TaskAllocator& b) noexcept { return a.task == b.task; }
  friend bool operator!=(const TaskAllocator& a, const TaskAllocator& b) noexcept { return a.task != b.task; }
};

using TaskExecutor = boost::asio::io_context::basic_executor_type<TaskAllocator<void>, 0>;

}  // namespace

void launch(EntryPoint entry, TaskBase& task) {
  boost::asio::any_io_executor executor = boost::asio::require(
      task.core().executor(), boost::asio::execution::allocator(TaskAllocator<void>(&task)));
  boost::asio::cancellation_slot slot = task.cancel_signal.slot();
  boost::asio::detail::awaitable_handler<boost::asio::any_io_executor, void>(
      std::move(entry), executor, slot, boost::asio::cancellation_state(slot))
      .launch();
}

TaskBase* task_of(const boost::asio::any_io_executor& executor) noexcept {
  const TaskExecutor* tagged = executor.target<TaskExecutor>();
  return tagged ? boost::asio::query(*tagged, boost::asio::execution::allocator).task : nullptr;
}
void set_this_thread_core(LoopCore* core) noexcept { t_core = core; }

// ---------------------------------------------------------------- commands

void TaskBase::execute(LoopCore& core) noexcept {
  core.start_task(*this);
  state().release();  // the queue's reference
}

void TaskBase::discard(LoopCore& core) noexcept {
  core.reject(*this);
  state().release();
}

bool TaskBase::request_cancel_any_thread() noexcept {
  if (state().ready()) return false;
  if (cancel_requested_.exchange(true, std::memory_order_acq_rel)) return true;
  state().add_ref();
  if (!core().push(cancel_command_)) {
    // The loop closed its queue, so it has settled this task already.
    state().release();
    return false;
  }
  return true;
}

void TaskBase::link_stop_token(std::stop_token token) {
  if (token.stop_possible()) stop_link_ = std::make_unique<std::stop_callback<CancelOnStop>>(std::move(token), CancelOnStop{this});
}

void CancelCommand::execute(LoopCore& core) noexcept {
  core.deliver_cancel(task_);
  task_.state().release();
}

void CancelCommand::discard(LoopCore&) noexcept { task_.state().release(); }

void CancelAllState::execute(LoopCore& core) noexcept {
  core.start_cancel_all(*this);
  release();
}

void CancelAllState::discard(LoopCore&) noexcept {
  set_value(std::size_t{0});
  release();
}

// ---------------------------------------------------------------- any thread

LoopCore::LoopCore(LoopOptions options) : options_(std::move(options)) {
  if (options_.name.empty() || options_.name.size() > 15 || options_.name.find('\0') != std::string::npos) {
    throw InvalidArgument("loop name must be 1 to 15 bytes without NUL: '" + options_.name + "'");
  }
  auto negative = [](std::chrono::nanoseconds d) { return d < std::chrono::nanoseconds::zero(); };
  if (options_.worker_threads == 0) throw InvalidArgument("worker_threads must be at least 1");
  if (options_.start_timeout <= std::chrono::nanoseconds::zero()) {
    throw InvalidArgument("start_timeout must be positive");
  }
  if (negative(options_.destructor_stop.drain_timeout) || negative(options_.destructor_stop.cancel_timeout) ||
      negative(options_.destructor_stop.hook_timeout)) {
    throw InvalidArgument("stop deadlines must not be negative");
  }
  work_.emplace(io_.get_executor());
}

LoopCore::~LoopCore() = default;

bool LoopCore::push(Command& command) noexcept {
  switch (queue_.push(command)) {
    case CommandQueue::PushResult::closed:
      return false;
    case CommandQueue::PushResult::pushed_first:
      // Only the push that made the queue non-empty wakes the loop; the drain it schedules
      // takes everything pushed until then.
      boost::asio::post(io_, DrainHandler{this});
      return true;
    case CommandQueue::PushResult::pushed:
      return true;
  }
  return false;
}

WorkerPool& LoopCore::workers() {
  if (!workers_) {
    workers_ = std::make_shared<WorkerPool>(options_.worker_threads, options_.name.substr(0, 12) + "-w");
  }
  return *workers_;
}

void LoopCore::check_started() const {
  if (lifecycle() == Lifecycle::created) throw InvalidState("submission before start(): start the loop first");
}

void LoopCore::reject_at_call(TaskBase& task) noexcept {
  refuse_posted_call_at_call();
  task.drop_function();
  if (task.kind() != TaskKind::detached) {
    task.settle_exception(std::make_exception_ptr(LoopStopped("submission refused: the loop is stopped")));
  }
}

Ref<CancelAllState> LoopCore::cancel_all() {
  check_started();
  auto group = Ref<CancelAllState>::adopt(new CancelAllState());
  if (!accepting()) {
    group->set_value(std::size_t{0});
    return group;
  }
  group->add_ref();  // the queue's
  if (!push(*group)) {
    group->release();
    group->set_value(std::size_t{0});
  }
  return group;
}

void LoopCore::report_error(std::exception_ptr error, std::string_view context) noexcept {
  unhandled_errors_.fetch_add(1, std::memory_order_relaxed);
  if (options_.error_handler) {
    try {
      options_.error_handler(error, context);
    } catch (...) {
    }
    return;
  }
  std::string what = describe(error);
  std::fprintf(stderr, "loopbridge[%s]: unhandled error in %.*s: %s\n", options_.name.c_str(),
               static_cast<int>(context.size()), context.data(), what.c_str());
}

// ---------------------------------------------------------------- loop thread

void LoopCore::drain() noexcept {
  for (;;) {
    for (Command* command = queue_.take_all(); command != nullptr;) {
      Command* next = command->next_in_queue;
      queue_.ran_one();
      command->execute(*this);
      command = next;
    }
    // Low-latency mode: a command arriving within the spin runs now. Its producer found the
    // queue empty and posted a drain as well, which will find nothing: harmless.
    if (!spin_until([this] { return queue_.has_commands(); }, options_.spin_before_sleep)) return;
  }
}

void LoopCore::bump(std::atomic<std::uint64_t>& counter) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void LoopCore::link(TaskBase& task) noexcept {
  task.start_seq = ++next_seq_;
  task.prev_in_flight = in_flight_tail_;
  task.next_in_flight = nullptr;
  (in_flight_tail_ ? in_flight_tail_->next_in_flight : in_flight_head_) = &task;
  in_flight_tail_ = &task;
  bump(in_flight_);
}

void LoopCore::unlink(TaskBase& task) noexcept {
  (task.prev_in_flight ? task.prev_in_flight->next_in_flight : in_flight_head_) = task.next_in_flight;
  (task.next_in_flight ? task.next_in_flight->prev_in_flight : in_flight_tail_) = task.prev_in_flight;
  task.prev_in_flight = task.next_in_flight = nullptr;
  in_flight_.store(in_flight_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void LoopCore::start_task(TaskBase& task) noexcept {
  if (task.kind() != TaskKind::hook) bump(submitted_);
  if (stop_executed_ && task.kind() != TaskKind::hook) {
    reject(task);
    return;
  }
  if (task.cancel_requested_.load(std::memory_order_acquire)) {
    // Cancelled before it could start: it never runs.
    task.settled = true;
    if (task.kind() != TaskKind::hook) bump(cancelled_);
    task.drop_function();
    task.settle_exception(std::make_exception_ptr(TaskCancelled("task cancelled before it started")));
    return;
  }
  task.running = true;
  if (task.coroutine && task.kind() != TaskKind::hook) link(task);
  auto outer = exchange_this_thread_context(task.context);
  task.run();
  exchange_this_thread_context(std::move(outer));
}

bool LoopCore::begin_posted_call() noexcept {
  bump(submitted_);
  if (!stop_executed_) return true;
  refuse_posted_call();
  return false;
}

void LoopCore::end_posted_call(std::exception_ptr error) noexcept {
  if (error) {
    bump(failed_);
    report_error(std::move(error), "posted task");
  } else {
    bump(completed_);
  }
}

void LoopCore::refuse_posted_call() noexcept {
  bump(rejected_);
  report_error(std::make_exception_ptr(LoopStopped("submission refused: the loop is stopping")), "post refused at stop");
}

void LoopCore::refuse_posted_call_at_call() noexcept {
  // Host side: the only counter writes that are not the loop thread's.
  submitted_.fetch_add(1, std::memory_order_relaxed);
  rejected_.fetch_add(1, std::memory_order_relaxed);
}

void LoopCore::deliver_cancel(TaskBase& task) noexcept {
  if (!task.running || task.cancel_delivered || task.settled) return;
  task.cancel_delivered = true;
  task.cancel_signal.emit(boost::asio::cancellation_type::terminal);
}

void LoopCore::start_cancel_all(CancelAllState& group) noexcept {
  std::size_t count = 0;
  for (TaskBase* t = in_flight_head_; t != nullptr;) {
    TaskBase* next = t->next_in_flight;  // emitting may end a task synchronously
    ++count;
    deliver_cancel(*t);
    t = next;
  }
  // Tasks that ended while the signals were emitted are no longer in flight.
  std::size_t remaining = 0;
  for (TaskBase* t = in_flight_head_; t != nullptr; t = t->next_in_flight) ++remaining;
  group.cancelled = count;
  group.remaining = remaining;
  group.last_seq = next_seq_;
  if (remaining == 0) {
    group.set_value(count);
  } else {
    pending_cancel_alls_.push_back(Ref<CancelAllState>::share(&group));
  }
}

void LoopCore::task_left(TaskBase& task) noexcept {
  task.running = false;
  if (!task.coroutine) return;
  if (task.kind() == TaskKind::hook) {
    notify_progress();
    return;
  }
  unlink(task);
  for (std::size_t i = 0; i < pending_cancel_alls_.size();) {
    CancelAllState& group = *pending_cancel_alls_[i];
    if (task.start_seq <= group.last_seq && --group.remaining == 0) {
      group.set_value(group.cancelled);
      pending_cancel_alls_.erase(pending_cancel_alls_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  notify_progress();
}

std::optional<std::exception_ptr> LoopCore::conclude(TaskBase& task, std::exception_ptr error) noexcept {
  if (task.settled) return std::nullopt;  // abandoned at stop; its future already settled
  const bool hook = task.kind() == TaskKind::hook;
  std::exception_ptr verdict;
  if (task.cancel_delivered) {
    if (error && !is_cancellation(error)) report_error(error, "task failed while being cancelled");
    if (!hook) bump(cancelled_);
    verdict = std::make_exception_ptr(TaskCancelled("task cancelled while it ran"));
  } else if (error) {
    if (task.kind() == TaskKind::detached) report_error(error, "posted task");
    if (!hook) bump(failed_);
    verdict = std::move(error);
  } else if (!hook) {
    bump(completed_);
  }
  task.settled = true;
  return verdict;
}

void LoopCore::reject(TaskBase& task) noexcept {
  task.settled = true;
  task.drop_function();
  if (task.kind() == TaskKind::detached) {
    refuse_posted_call();  // counts it and tells the error handler: nobody else would know
    return;                // and nobody holds a handle to settle
  }
  if (task.kind() != TaskKind::hook) bump(rejected_);
  task.settle_exception(std::make_exception_ptr(LoopStopped("submission refused: the loop is stopping")));
}

void LoopCore::notify_progress() noexcept {
  if (waiting_for_progress_ && progress_timer_) progress_timer_->cancel();
}

void LoopCore::abandon_remaining() noexcept {
  while (TaskBase* task = in_flight_head_) {
    bump(abandoned_count_);
    // Keep it until the io_context has destroyed its frame: only then may its callable go.
    task->state().add_ref();
    abandoned_.push_back(task);
    task->settled = true;
    task->settle_exception(std::make_exception_ptr(
        TaskAbandoned("task abandoned: it did not finish unwinding before the stop's cancel deadline")));
    task_left(*task);
  }
}

// ---------------------------------------------------------------- lifecycle

void LoopCore::add_hook(HookEntry entry) {
  if (lifecycle() != Lifecycle::created) throw InvalidState("hooks must be added before start()");
  if (!entry.on_start && !entry.on_stop) throw InvalidArgument("an empty hook was added");
  hooks_.push_back(std::move(entry));
}

void LoopCore::wait_started() {
  // A failed start ends the thread without opening started_: wait for either.
  while (!wait_latch(started_, std::chrono::steady_clock::now() + std::chrono::milliseconds(1))) {
    if (finished_.load(std::memory_order_acquire)) break;
  }
  std::lock_guard lock(latch_mutex_);
  if (start_error_) std::rethrow_exception(start_error_);
}

void LoopCore::mark_start_failed_before_thread() noexcept {
  lifecycle_.store(Lifecycle::stopped, std::memory_order_release);
  queue_.close();
}

void LoopCore::request_stop(const StopOptions& options) noexcept {
  if (stop_requested_.exchange(true, std::memory_order_acq_rel)) return;
  {
    std::lock_guard lock(latch_mutex_);
    requested_stop_ = options;
    stop_requested_at_ = std::chrono::steady_clock::now();
  }
  Lifecycle expected = Lifecycle::running;
  if (!lifecycle_.compare_exchange_strong(expected, Lifecycle::stopping, std::memory_order_acq_rel)) {
    expected = Lifecycle::starting;
    lifecycle_.compare_exchange_strong(expected, Lifecycle::stopping, std::memory_order_acq_rel);
  }
  push(stop_command_);
}

bool LoopCore::wait_finished(std::chrono::steady_clock::time_point deadline) {
  return wait_latch(finished_, deadline);
}

std::chrono::nanoseconds LoopCore::stop_budget() const {
  StopOptions options;
  {
    std::lock_guard lock(latch_mutex_);
    options = requested_stop_;
  }
  std::size_t stop_hooks = 0;
  for (const auto& entry : hooks_) stop_hooks += entry.on_stop ? 1 : 0;
  return options.drain_timeout + options.cancel_timeout +
         static_cast<std::int64_t>(stop_hooks) * (options.hook_timeout + options.cancel_timeout);
}

ShutdownReport LoopCore::report() const {
  ShutdownReport r;
  r.submitted = submitted_.load(std::memory_order_relaxed);
  r.completed = completed_.load(std::memory_order_relaxed);
  r.failed = failed_.load(std::memory_order_relaxed);
  r.cancelled = cancelled_.load(std::memory_order_relaxed);
  r.abandoned = abandoned_count_.load(std::memory_order_relaxed);
  r.rejected = rejected_.load(std::memory_order_relaxed);
  r.abandoned_workers = abandoned_workers_.load(std::memory_order_relaxed);
  std::lock_guard lock(latch_mutex_);
  r.hook_errors = hook_errors_;
  r.duration = stop_duration_;
  return r;
}

}  // namespace loopbridge::detail

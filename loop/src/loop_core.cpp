#include <loopbridge/loop/detail/loop_core.hpp>
#include <loopbridge/loop/detail/task.hpp>

#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/multiple_exceptions.hpp>
#include <boost/asio/post.hpp>
#include <boost/throw_exception.hpp>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <exception>
#include <memory>
#include <pthread.h>
#include <typeinfo>
#include <thread>
#include <utility>

namespace loopbridge::detail {

/// Hands Asio the loop's wake slot for the drain handler's operation. Only one wake-up is
/// pending at a time (LoopCore::wake), and Asio frees an operation's memory before it calls
/// the handler, so the slot is always free when a new one is posted.
template <class T>
class WakeAllocator {
public:
  using value_type = T;
  explicit WakeAllocator(LoopCore& core) noexcept : core_(&core) {}
  template <class U>
  WakeAllocator(const WakeAllocator<U>& other) noexcept : core_(other.core_) {}

  T* allocate(std::size_t n) noexcept {
    static_assert(sizeof(T) <= LoopCore::kWakeSlotSize && alignof(T) <= alignof(std::max_align_t),
                  "the wake slot is too small for Asio's operation");
    (void)n;  // always 1
    return reinterpret_cast<T*>(core_->wake_slot_);
  }
  void deallocate(T*, std::size_t) noexcept {}

  friend bool operator==(const WakeAllocator& a, const WakeAllocator& b) noexcept { return a.core_ == b.core_; }
  friend bool operator!=(const WakeAllocator& a, const WakeAllocator& b) noexcept { return a.core_ != b.core_; }

private:
  template <class>
  friend class WakeAllocator;
  LoopCore* core_;
};

namespace {

thread_local LoopCore* t_core = nullptr;
// Cancels of unstarted tasks this thread is inside (destroying their callables).
constinit thread_local int t_cancels_under_way = 0;
thread_local const LoopCore* t_work_owner = nullptr;
// Time spent in RunScopes nested inside the current one, to charge each stretch once.
thread_local std::chrono::nanoseconds t_nested{0};

using Clock = std::chrono::steady_clock;

std::atomic<std::uint64_t> g_next_serial{1};

// Every LoopCore, for LoopCore::live(): a list touched only at creation and destruction.
std::mutex g_registry_mutex;
LoopCore* g_registry_head = nullptr;

// fork(): the child has none of the parent's threads, so every loop the parent had started
// is dead there. The registry is held across the fork so that the child sees it whole.
void lock_registry_for_fork() noexcept { g_registry_mutex.lock(); }
void unlock_registry_after_fork() noexcept { g_registry_mutex.unlock(); }
void orphan_loops_in_fork_child() noexcept {
  g_forked_child.store(true, std::memory_order_relaxed);
  for (LoopCore* core = g_registry_head; core != nullptr; core = core->next_in_registry()) core->orphan_in_fork_child();
  g_registry_mutex.unlock();
}

// The process-wide error handler. Never destroyed: loops report errors during exit too (a
// static loop's stop, the default loop's exit hook, a detached thread).
struct ProcessErrorHandler {
  std::mutex mutex;
  std::shared_ptr<const ErrorHandler> handler;
};
ProcessErrorHandler& process_error_handler_slot() {
  static ProcessErrorHandler* slot = new ProcessErrorHandler;
  return *slot;
}

std::shared_ptr<const ErrorHandler> process_error_handler() {
  ProcessErrorHandler& slot = process_error_handler_slot();
  std::lock_guard lock(slot.mutex);
  return slot.handler;
}

std::string describe_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(std::move(error));
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
  }
}

// What Asio throws into a coroutine whose operation a cancel ended.
bool is_abort(const boost::system::system_error& e) noexcept {
  return e.code() == boost::system::errc::operation_canceled;  // operation_aborted is ECANCELED
}

// Whether a cancelled task ended with the cancellation itself (not reported) or with an
// error of its own (reported): TaskCancelled, or Asio's operation_aborted (as
// boost::system::system_error, perhaps wrapped by boost::throw_exception). Any other error,
// a connection reset among them, is the task's own. Classified by type where the library
// allows it, without a rethrow: a stop cancelling thousands of tasks pays for every throw.
bool is_cancellation(const std::exception_ptr& error) {
#if defined(__GLIBCXX__)
  if (const std::type_info* type = error.__cxa_exception_type()) {
    // libstdc++'s exception_ptr holds the thrown object's address and nothing else.
    static_assert(sizeof(std::exception_ptr) == sizeof(void*));
    const void* object = *reinterpret_cast<const void* const*>(&error);
    if (*type == typeid(TaskCancelled)) return true;
    if (*type == typeid(boost::system::system_error)) {
      return is_abort(*static_cast<const boost::system::system_error*>(object));
    }
    if (*type == typeid(boost::wrapexcept<boost::system::system_error>)) {
      return is_abort(*static_cast<const boost::wrapexcept<boost::system::system_error>*>(object));
    }
  }
#endif
  try {
    std::rethrow_exception(error);
  } catch (const TaskCancelled&) {
    return true;
  } catch (const boost::asio::multiple_exceptions& e) {
    // Asio's awaitable operators (a && b) wrap the branches' cancellations, nested.
    return is_cancellation(e.first_exception());
  } catch (const boost::system::system_error& e) {
    return is_abort(e);
  } catch (...) {
    return false;
  }
}

struct DrainHandler {
  LoopCore* core;
  using allocator_type = WakeAllocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(*core); }
  void operator()() const noexcept {
    core->wake_taken();
    core->drain();
  }
};

// For a borrowed io_context, which may hold it past the loop's end: it keeps the core alive.
struct BorrowedDrainHandler {
  Ref<LoopCore> core;
  using allocator_type = WakeAllocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(*core); }
  void operator()() const noexcept {
    core->wake_taken();
    core->drain_borrowed();
  }
};

}  // namespace

LoopCore* this_thread_core() noexcept { return t_core; }

void check_loop_not_forked_away(const RefCounted* loop) {
  if (loop != nullptr) static_cast<const LoopCore*>(loop)->check_not_forked_away();
}

namespace {

/// Runs one resumption of a task's coroutine as a timed stretch of that task.
template <class F>
struct Resumption {
  Ref<StateBase> keep;  // the task outlives the stretch even if its coroutine ends in it
  TaskBase* task;
  F resume;


  // current_context() inside the coroutine is the task's on every stretch, not only the
  // first. Free for tasks without a context (a null pointer is copied).
  void operator()() { run_task_stretch(*task, std::move(keep), resume); }
};

/// The executor of a task's coroutine: the loop's io_context executor, plus the task it
/// belongs to. Every resumption of the coroutine passes through execute(), so each one is
/// timed (stall detection), and task_of() finds the task from this_coro::executor.
template <class Inner>
class TaskExecutor {
public:
  // Each copy keeps the task's state alive: user code may keep the executor (a timer, a
  // co_spawned coroutine) long after the task itself has ended.
  TaskExecutor(Inner inner, TaskBase* task) noexcept
      : inner_(std::move(inner)), task_(task), keep_(Ref<StateBase>::share(&task->state())) {}

  TaskBase* task() const noexcept { return task_; }

  template <class Property>
  auto query(const Property& property) const noexcept
      -> decltype(boost::asio::query(std::declval<const Inner&>(), property)) {
    return boost::asio::query(inner_, property);
  }

  template <class Property>
  auto require(const Property& property) const
      -> TaskExecutor<std::decay_t<decltype(boost::asio::require(std::declval<const Inner&>(), property))>> {
    return {boost::asio::require(inner_, property), task_};
  }

  template <class Property>
  auto prefer(const Property& property) const
      -> TaskExecutor<std::decay_t<decltype(boost::asio::prefer(std::declval<const Inner&>(), property))>> {
    return {boost::asio::prefer(inner_, property), task_};
  }

  template <class F>
  void execute(F&& f) const {
    inner_.execute(Resumption<std::decay_t<F>>{Ref<StateBase>::share(&task_->state()), task_, std::forward<F>(f)});
  }

  friend bool operator==(const TaskExecutor& a, const TaskExecutor& b) noexcept {
    return a.task_ == b.task_ && a.inner_ == b.inner_;
  }
  friend bool operator!=(const TaskExecutor& a, const TaskExecutor& b) noexcept { return !(a == b); }

private:
  template <class>
  friend class TaskExecutor;

  Inner inner_;
  TaskBase* task_;
  Ref<StateBase> keep_;
};

using LaunchExecutor = TaskExecutor<boost::asio::io_context::executor_type>;

}  // namespace

void launch(EntryPoint entry, TaskBase& task) {
  boost::asio::any_io_executor executor = LaunchExecutor(task.core().executor(), &task);
  boost::asio::cancellation_slot slot = task.cancel_signal.slot();
  try {
    boost::asio::detail::awaitable_handler<boost::asio::any_io_executor, void>(
        std::move(entry), executor, slot, boost::asio::cancellation_state(slot))
        .launch();
  } catch (...) {
    task.core().escaped_task_stretch(task, std::current_exception());
  }
}

TaskBase* task_of(const boost::asio::any_io_executor& executor) noexcept {
  const LaunchExecutor* tagged = executor.target<LaunchExecutor>();
  return tagged ? tagged->task() : nullptr;
}
void set_this_thread_core(LoopCore* core) noexcept { t_core = core; }
const LoopCore* this_thread_work_owner() noexcept { return t_work_owner; }
const LoopCore* exchange_this_thread_work_owner(const LoopCore* owner) noexcept {
  return std::exchange(t_work_owner, owner);
}

// ---------------------------------------------------------------- commands

void TaskBase::execute(LoopCore& core) noexcept {
  core.start_task(*this);
  if (state().release()) core.batch_clock_moved();  // the queue's reference was the last: T and F went
}

void TaskBase::discard(LoopCore& core) noexcept {
  core.reject(*this);
  state().release();
}

bool TaskBase::claim_start(CancelGate to) noexcept {
  CancelGate gate = CancelGate::open;
  return cancel_gate_.compare_exchange_strong(gate, to, std::memory_order_acq_rel);
}

bool TaskBase::claim_refusal() noexcept {
  if (claim_start(CancelGate::refused)) return true;
  wait_for_canceller();
  return false;
}

void TaskBase::wait_for_canceller() const noexcept {
  while (cancel_in_progress()) std::this_thread::yield();
}

bool TaskBase::request_cancel_any_thread(CancelCause cause) noexcept {
  if (state().ready()) return false;
  // Once the gate is ours the loop may drop its reference at any moment: hold one.
  const Ref<StateBase> keep = Ref<StateBase>::share(&state());
  CancelGate gate = CancelGate::open;
  if (cancel_gate_.compare_exchange_strong(gate, CancelGate::cancelling, std::memory_order_acq_rel)) {
    // It never runs: settled now, as concurrent.futures cancels a pending future; the loop
    // only counts it when it takes the command.
    ++t_cancels_under_way;
    drop_function();
    --t_cancels_under_way;
    settle_exception(std::make_exception_ptr(TaskCancelled(
        cause, std::string("task cancelled by ") + to_string(cause) + " before it started")));
    cancel_gate_.store(CancelGate::cancelled_unstarted, std::memory_order_release);
    return true;
  }
  if (gate == CancelGate::cancelling) {
    // Another cancel is destroying the callable and settles the task once done: wait for it,
    // unless that cancel may be waiting for this very thread (a loop thread, or a thread that
    // is inside a cancel itself: a capture's destructor that cancels its own task).
    if (this_thread_core() == nullptr && t_cancels_under_way == 0) wait_for_canceller();
    return true;
  }
  if (gate != CancelGate::coroutine_started) {
    // A cancel is on its way already, or a plain callable has started (its outcome stands),
    // or the stop refused the task.
    return gate == CancelGate::cancelled_unstarted || gate == CancelGate::coroutine_cancel_requested;
  }
  if (!cancel_gate_.compare_exchange_strong(gate, CancelGate::coroutine_cancel_requested, std::memory_order_acq_rel)) {
    return gate == CancelGate::coroutine_cancel_requested;
  }
  requested_cause = cause;  // only the winner writes it; the push publishes it to the loop
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
  core.deliver_cancel(task_, task_.requested_cause);
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

void InFlightQuery::execute(LoopCore& core) noexcept {
  try {
    set_value(core.in_flight_snapshot());
  } catch (...) {
    set_exception(std::current_exception());
  }
  release();
}

void InFlightQuery::discard(LoopCore&) noexcept {
  set_value(std::vector<TaskInfo>{});
  release();
}

// ---------------------------------------------------------------- measurements

void DurationHistogram::record(std::chrono::nanoseconds duration) noexcept {
  const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(duration.count(), 0));
  std::size_t index = ns;
  if (ns >= 8) {
    const int msb = std::bit_width(ns) - 1;  // >= 3
    index = 8 + static_cast<std::size_t>(msb - 3) * 8 + ((ns >> (msb - 3)) & 7);
  }
  auto& bucket = counts_[index];
  bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (static_cast<std::int64_t>(ns) > max_.load(std::memory_order_relaxed)) {
    max_.store(static_cast<std::int64_t>(ns), std::memory_order_relaxed);
  }
}

DurationHistogram::Counts DurationHistogram::snapshot() const noexcept {
  Counts counts{};
  for (std::size_t i = 0; i < kBuckets; ++i) counts[i] = counts_[i].load(std::memory_order_relaxed);
  return counts;
}

std::chrono::nanoseconds DurationHistogram::percentile(const Counts& counts, double p) noexcept {
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0) return std::chrono::nanoseconds(0);
  const auto rank = static_cast<std::uint64_t>(p * static_cast<double>(total - 1)) + 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen < rank) continue;
    if (i < 8) return std::chrono::nanoseconds(i);
    const std::size_t shift = (i - 8) / 8;
    const std::uint64_t upper = ((8 + (i - 8) % 8 + 1) << shift) - 1;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(std::min<std::uint64_t>(upper, INT64_MAX)));
  }
  return std::chrono::nanoseconds(0);
}

RunScope::RunScope(LoopCore& core, const TaskLabel& label, Kind kind) noexcept
    : core_(core),
      label_(label),
      kind_(kind),
      start_(kind == Kind::command ? core.command_start() : Clock::now()),
      outer_nested_(t_nested) {
  t_nested = std::chrono::nanoseconds::zero();
}

RunScope::~RunScope() {
  const auto end = Clock::now();
  const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_);
  const auto own = total - t_nested;
  t_nested = outer_nested_ + total;
  if (kind_ == Kind::command) core_.command_scope_ended(end);
  core_.stretch_ran(label_, own);  // after: a stall handler moves the clock on
}

void LoopCore::stretch_ran(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept {
  if (duration.count() > longest_stretch_ns_.load(std::memory_order_relaxed)) {
    longest_stretch_ns_.store(duration.count(), std::memory_order_relaxed);
  }
  if (options_.stall_threshold > std::chrono::nanoseconds::zero() && duration >= options_.stall_threshold) {
    report_stall(label, duration);
  }
}

void LoopCore::report_stall(const TaskLabel& label, std::chrono::nanoseconds duration) noexcept {
  bump(stalls_);
  batch_clock_moved();
  try {
    StallReport report{options_.name, label.name.empty() ? "(unnamed)" : label.name, label.where, duration};
    if (options_.stall_handler) {
      options_.stall_handler(report);
      return;
    }
    std::fprintf(stderr, "loopbridge[%s]: warning: task '%s' (%s:%u) blocked the loop thread for %.1f ms\n",
                 report.loop.c_str(), report.task.c_str(), report.where.file_name(),
                 static_cast<unsigned>(report.where.line()),
                 std::chrono::duration<double, std::milli>(duration).count());
  } catch (...) {
    report_error(std::current_exception(), "stall handler");
  }
}

TaskInfo LoopCore::describe(const TaskBase& task, Clock::time_point now) const {
  TaskInfo info;
  info.name = task.label.name;
  info.where = task.label.where;
  info.age = std::chrono::duration_cast<std::chrono::nanoseconds>(now - task.label.submitted_at);
  info.phase = task.cancel_delivered ? TaskPhase::cancelling : TaskPhase::running;
  info.id = task.start_seq;
  return info;
}

std::vector<TaskInfo> LoopCore::in_flight_snapshot() const {
  std::vector<TaskInfo> list;
  const auto now = Clock::now();
  for (const TaskBase* task = in_flight_head_; task != nullptr; task = task->next_in_flight) {
    list.push_back(describe(*task, now));
  }
  return list;
}

LoopStats LoopCore::stats() const noexcept {
  LoopStats s;
  auto load = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  // Outcomes first, the submission count last: a snapshot taken while work moves then
  // errs on the side of submitted >= the sum of the rest.
  s.completed = load(completed_);
  s.failed = load(failed_);
  s.cancelled = load(cancelled_);
  s.abandoned = load(abandoned_count_);
  s.rejected = load(rejected_);
  s.rejected_full = load(rejected_full_);
  s.queued = queued();
  s.running = load(running_);
  s.in_flight = s.queued + s.running;
  s.submitted = load(submitted_);
  s.queue_depth = queue_.depth();
  s.errors_reported = load(unhandled_errors_);
  s.stalls = load(stalls_);
  const auto counts = lag_.snapshot();
  s.lag_p50 = DurationHistogram::percentile(counts, 0.50);
  s.lag_p99 = DurationHistogram::percentile(counts, 0.99);
  s.lag_max = lag_.max();
  s.longest_handler = std::chrono::nanoseconds(longest_stretch_ns_.load(std::memory_order_relaxed));
  const auto started = started_at_ns_.load(std::memory_order_relaxed);
  if (started != 0) {
    const Clock::time_point start_point{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(started))};
    s.uptime = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_point);
  }
  return s;
}

// ---------------------------------------------------------------- any thread

LoopCore::LoopCore(LoopOptions options, boost::asio::io_context* borrowed)
    : options_(std::move(options)),
      io_(borrowed ? *borrowed : owned_io_.emplace()),
      serial_(g_next_serial.fetch_add(1, std::memory_order_relaxed)) {
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
  if (negative(options_.full_wait) || negative(options_.stall_threshold)) {
    throw InvalidArgument("full_wait and stall_threshold must not be negative");
  }
  if (negative(options_.spin_before_sleep) || options_.spin_before_sleep > kMaxSpinBeforeSleep) {
    throw InvalidArgument("spin_before_sleep must be 0 to 10 ms: the loop thread spins that long between batches, and "
                          "its timers wait meanwhile");
  }
  check_thread_options(options_);
  check_backend(io_);
  static const bool fork_handlers = [] {
    ::pthread_atfork(lock_registry_for_fork, unlock_registry_after_fork, orphan_loops_in_fork_child);
    return true;
  }();
  (void)fork_handlers;
  std::lock_guard lock(g_registry_mutex);
  next_live_ = g_registry_head;
  if (g_registry_head) g_registry_head->prev_live_ = this;
  g_registry_head = this;
}

LoopCore::~LoopCore() {
  std::lock_guard lock(g_registry_mutex);
  (prev_live_ ? prev_live_->next_live_ : g_registry_head) = next_live_;
  if (next_live_) next_live_->prev_live_ = prev_live_;
}

std::vector<Ref<LoopCore>> LoopCore::live() {
  std::vector<Ref<LoopCore>> loops;  // released after the unlock: a last reference destroys a loop
  std::lock_guard lock(g_registry_mutex);
  for (LoopCore* core = g_registry_head; core != nullptr; core = core->next_live_) {
    loops.emplace_back();  // may throw: before a reference is taken
    if (core->lifecycle() != Lifecycle::stopped && core->try_add_ref()) {
      loops.back() = Ref<LoopCore>::adopt(core);
    } else {
      loops.pop_back();
    }
  }
  std::reverse(loops.begin(), loops.end());
  return loops;
}

bool LoopCore::push(Command& command) noexcept {
  switch (queue_.push(command)) {
    case CommandQueue::PushResult::closed:
      return false;
    case CommandQueue::PushResult::pushed_first:
      // Only the push that made the queue non-empty wakes the loop; the drain it schedules
      // takes everything pushed until then.
      wake();
      first_push_wakes_.fetch_add(1, std::memory_order_release);
      return true;
    case CommandQueue::PushResult::pushed:
      return true;
  }
  return false;
}

WorkerPool& LoopCore::workers() {
  if (!workers_) {
    workers_ = std::make_shared<WorkerPool>(options_.worker_threads, options_.name.substr(0, 12) + "-w", this);
  }
  return *workers_;
}

void LoopCore::check_started() const {
  if (lifecycle() == Lifecycle::created) throw InvalidState("submission before start(): start the loop first");
}

bool LoopCore::admit(const SubmitOptions& options) {
  submitted_.fetch_add(1, std::memory_order_relaxed);
  if (!accepting()) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (options_.queue_capacity == 0) {
    queued_in_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (try_reserve()) return true;
  const QueueFullPolicy policy = options.when_full.value_or(options_.when_full);
  // On a loop thread, waiting could wait on this very loop: fail at once instead.
  if (policy == QueueFullPolicy::wait && this_thread_core() == nullptr) {
    const auto wait = options.full_wait.value_or(options_.full_wait);
    if (wait_for_room(deadline_after(wait))) return true;
    if (!accepting()) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  rejected_full_.fetch_add(1, std::memory_order_relaxed);
  throw QueueFull("submission refused: the loop's queue holds its capacity of " +
                  std::to_string(options_.queue_capacity) + " waiting submissions");
}

bool LoopCore::try_reserve() noexcept {
  std::uint64_t in = queued_in_.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t out = queued_out_.load(std::memory_order_relaxed);
    if (in > out && in - out >= options_.queue_capacity) return false;
    if (queued_in_.compare_exchange_weak(in, in + 1, std::memory_order_relaxed)) return true;
  }
}

std::uint64_t LoopCore::queued() const noexcept {
  // Leaving is counted after entering; read in the other order, the two may cross.
  const std::uint64_t out = queued_out_.load(std::memory_order_relaxed);
  const std::uint64_t in = queued_in_.load(std::memory_order_relaxed);
  return in > out ? in - out : 0;
}

bool LoopCore::wait_for_room(Clock::time_point deadline) {
  full_waiters_.fetch_add(1, std::memory_order_seq_cst);
  bool reserved = false;
  {
    std::unique_lock lock(full_mutex_);
    for (;;) {
      if (try_reserve()) {
        reserved = true;
        break;
      }
      if (!accepting() || Clock::now() >= deadline) break;
      // The loop wakes waiters after each batch it ran; the slice bounds a missed wake.
      full_cv_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(10)));
    }
  }
  full_waiters_.fetch_sub(1, std::memory_order_relaxed);
  return reserved;
}

void LoopCore::wake_full_waiters() noexcept {
  if (full_waiters_.load(std::memory_order_seq_cst) == 0) return;
  { std::lock_guard lock(full_mutex_); }
  full_cv_.notify_all();
}

bool LoopCore::push_admitted(Command& command) noexcept {
  if (push(command)) return true;
  queued_in_.fetch_sub(1, std::memory_order_relaxed);
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void LoopCore::dequeued() noexcept { bump(queued_out_); }

void LoopCore::running_delta(std::int64_t delta) noexcept {
  running_.store(running_.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(delta),
                 std::memory_order_relaxed);
}

Ref<InFlightQuery> LoopCore::query_in_flight() {
  check_started();
  auto query = Ref<InFlightQuery>::adopt(new InFlightQuery());
  query->add_ref();  // the queue's
  if (!push(*query)) {
    query->release();
    query->set_value(std::vector<TaskInfo>{});
  }
  return query;
}

void LoopCore::reject_at_call(TaskBase& task) noexcept {
  if (!task.claim_refusal()) return;  // its stop token cancelled it already
  task.drop_function();
  if (task.kind() != TaskKind::detached) {
    task.settle_exception(std::make_exception_ptr(LoopStopped(forked_away() ? kForkedAway : "submission refused: the loop is stopped")));
  }
}

void LoopCore::orphan_in_fork_child() noexcept {
  // A loop never started has no thread to miss: the child may start it.
  if (lifecycle() == Lifecycle::created) return;
  forked_away_.store(true, std::memory_order_relaxed);
  lifecycle_.store(Lifecycle::stopped, std::memory_order_release);
  // Lock-free: every push fails from now on, so nothing in the child reaches the loop's
  // io_context, whose locks a parent thread may have held at the fork.
  (void)queue_.close();
}

void LoopCore::check_not_forked_away() const {
  if (forked_away()) throw LoopStopped(kForkedAway);
}

ShutdownReport LoopCore::report_in_fork_child() const noexcept {
  // The latch mutex may have been held by a thread of the parent: counts only.
  ShutdownReport r;
  r.submitted = submitted_.load(std::memory_order_relaxed);
  r.completed = completed_.load(std::memory_order_relaxed);
  r.failed = failed_.load(std::memory_order_relaxed);
  r.cancelled = cancelled_.load(std::memory_order_relaxed);
  r.abandoned = abandoned_count_.load(std::memory_order_relaxed);
  r.rejected = rejected_.load(std::memory_order_relaxed);
  r.joined = false;
  return r;
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
  if (this_thread_core() == this) batch_clock_moved();
  try {
    if (options_.error_handler) {
      options_.error_handler(error, context);
      return;
    }
    if (auto handler = process_error_handler()) {
      (*handler)(error, context);
      return;
    }
  } catch (...) {
    return;  // a handler must not throw; what it throws is dropped
  }
  std::string what = describe_error(error);
  std::fprintf(stderr, "loopbridge[%s]: unhandled error in %.*s: %s\n", options_.name.c_str(),
               static_cast<int>(context.size()), context.data(), what.c_str());
}

// ---------------------------------------------------------------- loop thread

Command* LoopCore::take_batch() noexcept {
  if (unfinished_batch_ != nullptr) return std::exchange(unfinished_batch_, nullptr);
  Command* command = queue_.take_all();
  if (command != nullptr) ++batches_taken_;
  return command;
}

void LoopCore::drain() noexcept {
  // Bounds one drain: past it, the rest of the batch waits behind what the io_context holds.
  std::size_t budget = kCommandsPerDrain;
  for (;;) {
    Command* command = take_batch();
    batch_clock_valid_ = false;  // the clock has moved on since the previous batch
    while (command != nullptr) {
      if (budget-- == 0) {
        unfinished_batch_ = command;
        batch_clock_armed_ = false;
        wake_full_waiters();
        wake();
        return;
      }
      Command* next = command->next_in_queue;
      queue_.ran_one();
      batch_clock_armed_ = std::exchange(batch_clock_valid_, false);
      command->execute(*this);
      command = next;
    }
    batch_clock_armed_ = false;
    wake_full_waiters();
    // Low-latency mode: a command arriving within the spin runs now. Its producer found the
    // queue empty and posted a drain as well, which will find nothing: harmless.
    if (!spin_until([this] { return queue_.has_commands(); }, options_.spin_before_sleep)) return;
  }
}

void LoopCore::drain_borrowed() noexcept {
  if (this_thread_core() == this) {
    drain();
    return;
  }
  if (lifecycle() == Lifecycle::stopped) return;  // a wake-up the stop left behind: nothing to run
  if (!foreign_runner_reported_.exchange(true, std::memory_order_relaxed)) {
    report_error(std::make_exception_ptr(InvalidState("a thread other than the loop's ran its borrowed io_context")),
                 "borrowed io_context (only the loop's thread may run it while the loop lives)");
  }
  wake();  // for the loop's thread
}

void LoopCore::wake() noexcept {
  // Either this exchange sees the pending handler's wake_taken() and posts, or that
  // handler's exchange sees this one, and with it the command just pushed. Posting into
  // the wake slot allocates nothing: a queued command can never be left without a wake-up.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  if (owned_io_) {
    boost::asio::post(io_, DrainHandler{this});
  } else {
    boost::asio::post(io_, BorrowedDrainHandler{Ref<LoopCore>::share(this)});
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
}

void LoopCore::unlink(TaskBase& task) noexcept {
  (task.prev_in_flight ? task.prev_in_flight->next_in_flight : in_flight_head_) = task.next_in_flight;
  (task.next_in_flight ? task.next_in_flight->prev_in_flight : in_flight_tail_) = task.prev_in_flight;
  task.prev_in_flight = task.next_in_flight = nullptr;
}

void LoopCore::start_task(TaskBase& task) noexcept {
  const bool hook = task.kind() == TaskKind::hook;
  if (!hook && stop_refuses_queued_work()) {
    cancel_queued_at_stop(task);
    return;
  }
  if (!hook) dequeued();
  if (!task.claim_start(task.coroutine ? TaskBase::CancelGate::coroutine_started
                                       : TaskBase::CancelGate::callable_started)) {
    // Cancelled before it could start, and settled by its canceller: it never runs.
    cancelled_before_start(task);
    return;
  }
  task.running = true;
  // On a borrowed io_context, what the task's coroutine leaves there (a coroutine it
  // co_spawned on its executor, which nothing here tracks) may be resumed by the owner after
  // the loop is gone, and each resumption passes through this core.
  if (!owned_io_ && task.coroutine) task.keeps_loop = Ref<RefCounted>::share(this);
  if (!hook) running_delta(+1);
  if (task.coroutine && !hook) link(task);
  RunScope scope(*this, task.label, RunScope::Kind::command);
  if (!hook) lag_.record(scope.started() - task.label.submitted_at);
  TaskContextInstall context(task.context);
  task.run();
}

bool LoopCore::begin_posted_call(const TaskLabel& label, Clock::time_point now) noexcept {
  dequeued();
  if (stop_refuses_queued_work()) {
    bump(cancelled_);  // as a task the stop cancels before it started; it never runs
    return false;
  }
  lag_.record(now - label.submitted_at);
  running_delta(+1);
  return true;
}

void LoopCore::end_posted_call(std::exception_ptr error) noexcept {
  running_delta(-1);
  if (error) {
    bump(failed_);
    report_error(std::move(error), "posted task");
  } else {
    bump(completed_);
  }
}

void LoopCore::discard_posted_call() noexcept {
  dequeued();
  refuse_posted_call();
}

void LoopCore::refuse_posted_call() noexcept {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  report_error(std::make_exception_ptr(LoopStopped("submission refused: the loop is stopping")), "post refused at stop");
}

void LoopCore::deliver_cancel(TaskBase& task, CancelCause cause) noexcept {
  if (!task.running || task.cancel_delivered || task.settled) return;
  task.cancel_delivered = true;
  task.cancel_cause = cause;
  task.cancel_signal.emit(boost::asio::cancellation_type::terminal);
}

void LoopCore::start_cancel_all(CancelAllState& group) noexcept {
  std::size_t count = 0;
  for (TaskBase* t = in_flight_head_; t != nullptr;) {
    TaskBase* next = t->next_in_flight;  // emitting may end a task synchronously
    ++count;
    deliver_cancel(*t, CancelCause::cancel_all);
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
  if (!hook) running_delta(-1);
  std::exception_ptr verdict;
  if (task.cancel_delivered) {
    if (error && !is_cancellation(error)) report_error(error, "task failed while being cancelled");
    if (!hook) bump(cancelled_);
    verdict = shared_error(cancelled_while_running_[static_cast<std::size_t>(task.cancel_cause)], [&] {
      return TaskCancelled(task.cancel_cause, std::string("task cancelled by ") + to_string(task.cancel_cause) +
                                                  " while it ran");
    });
  } else if (error) {
    if (task.kind() == TaskKind::detached) report_error(error, "posted task");
    task.failed_own = true;
    if (!hook) bump(failed_);
    verdict = std::move(error);
  } else if (!hook) {
    bump(completed_);
  }
  task.settled = true;
  return verdict;
}

void LoopCore::escaped_task_stretch(TaskBase& task, std::exception_ptr error) noexcept {
  if (!task.settled && !task.escaped_error) task.escaped_error = error;
  report_error(std::move(error), "an exception escaped a task's coroutine (the task fails with it)");
}

void LoopCore::recount_completed_as_failed() noexcept {
  completed_.store(completed_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  bump(failed_);
}

void LoopCore::reject(TaskBase& task) noexcept {
  if (task.kind() != TaskKind::hook) dequeued();
  if (!task.claim_start(TaskBase::CancelGate::refused)) {
    cancelled_before_start(task);  // before the stop reached it
    return;
  }
  task.settled = true;
  task.drop_function();
  if (task.kind() == TaskKind::detached) {
    refuse_posted_call();  // counts it and tells the error handler: nobody else would know
    return;                // and nobody holds a handle to settle
  }
  if (task.kind() != TaskKind::hook) rejected_.fetch_add(1, std::memory_order_relaxed);
  task.settle_exception(std::make_exception_ptr(LoopStopped("submission refused: the loop is stopping")));
}

bool LoopCore::stop_refuses_queued_work() noexcept {
  if (!stop_requested_.load(std::memory_order_acquire)) return false;
  if (!stop_seen_) {
    stop_seen_ = true;
    std::lock_guard lock(latch_mutex_);
    stop_drains_queued_work_ = requested_stop_.drain_timeout > std::chrono::nanoseconds::zero();
  }
  return !stop_drains_queued_work_ || stop_cancelling_;
}

void LoopCore::cancel_queued_at_stop(TaskBase& task) noexcept {
  dequeued();
  if (!task.claim_start(TaskBase::CancelGate::refused)) {
    cancelled_before_start(task);  // a cancel() got there first
    return;
  }
  task.settled = true;
  task.drop_function();
  bump(cancelled_);
  if (task.kind() == TaskKind::detached) return;  // a posted coroutine: nobody waits on it
  task.settle_exception(shared_error(cancelled_at_stop_, [] {
    return TaskCancelled(CancelCause::stop, "task cancelled by the loop's stop before it started");
  }));
}

void LoopCore::cancelled_before_start(TaskBase& task) noexcept {
  task.settled = true;
  if (task.kind() != TaskKind::hook) bump(cancelled_);
  if (!task.cancel_in_progress()) return;
  if (queue_.closed()) {
    // The stop's last step (or a failed start) closed it: the loop runs nothing more that
    // the canceller could be waiting for, so wait here, as finalize() does for those kept.
    task.wait_for_canceller();
    return;
  }
  std::erase_if(cancels_in_progress_, [](TaskBase* kept) {
    if (kept->cancel_in_progress()) return false;
    kept->state().release();
    return true;
  });
  try {
    cancels_in_progress_.push_back(&task);
    task.state().add_ref();
  } catch (...) {
    task.wait_for_canceller();  // out of memory: wait here, as the stop would
  }
}

void LoopCore::notify_progress() noexcept {
  if (waiting_for_progress_ && progress_timer_) progress_timer_->cancel();
}

void LoopCore::abandon_remaining(bool dropped) noexcept {
  const auto now = Clock::now();
  const std::exception_ptr error =
      dropped ? shared_error(dropped_at_stop_,
                             [] {
                               return TaskCancelled(CancelCause::stop,
                                                    "task dropped by the loop's stop: its frame was destroyed "
                                                    "without resuming");
                             })
              : shared_error(abandoned_at_stop_, [] {
                  return TaskAbandoned("task abandoned: it did not finish unwinding before the stop's cancel deadline");
                });
  std::vector<TaskInfo> listed;
  while (TaskBase* task = in_flight_head_) {
    running_delta(-1);
    if (dropped) {
      bump(cancelled_);
    } else {
      bump(abandoned_count_);
      if (listed.size() < kListedAbandonedTasks) {
        try {
          listed.push_back(describe(*task, now));
        } catch (...) {
          // Out of memory: the count above still tells.
        }
      }
    }
    // Keep it until the io_context has destroyed its frame: only then may its callable go.
    task->state().add_ref();
    try {
      abandoned_.push_back(task);
    } catch (...) {
      // Out of memory: its frame (and so its callable) stays for good.
    }
    task->settled = true;
    task->left_by_stop = true;
    // A borrowed io_context's owner resumes what the loop left there, to its end.
    task->given_up = owned_io_.has_value();
    task->settle_exception(error);
    task_left(*task);
  }
  if (!listed.empty()) {
    std::lock_guard lock(latch_mutex_);
    for (auto& info : listed) {
      if (abandoned_tasks_.size() >= kListedAbandonedTasks) break;
      abandoned_tasks_.push_back(std::move(info));
    }
  }
}

// ---------------------------------------------------------------- lifecycle

void LoopCore::add_hook(HookEntry& entry) {
  if (lifecycle() != Lifecycle::created) throw InvalidState("hooks must be added before start()");
  if (!entry.on_start && !entry.on_stop) throw InvalidArgument("an empty hook was added");
  hooks_.push_back(std::move(entry));
}

void LoopCore::wait_started() {
  // A failed start ends the thread without opening started_: wait for either.
  auto either = [this] { return started_.load(std::memory_order_acquire) || finished_.load(std::memory_order_acquire); };
  if (!spin_until(either, std::chrono::microseconds(100))) {
    std::unique_lock lock(latch_mutex_);
    latch_cv_.wait(lock, either);
  }
  std::lock_guard lock(latch_mutex_);
  if (start_error_) std::rethrow_exception(start_error_);
}

void LoopCore::mark_start_failed_before_thread() noexcept {
  start_pending_.store(false, std::memory_order_release);
  lifecycle_.store(Lifecycle::stopped, std::memory_order_release);
  // Submissions accepted since start() began settle here: no loop thread will run them.
  close_queue();
  work_.reset();
  release_io_context_claim();
  open_latch(finished_);  // wait_stopped(): stopped, with no thread to finish
}

void LoopCore::request_stop(const StopOptions& options) noexcept {
  if (forked_away()) return;  // stopped here already; its latch may be held by a parent thread
  {
    // The options are in place before anyone sees the request (stop_budget(), the loop).
    std::lock_guard lock(latch_mutex_);
    if (stop_requested_.load(std::memory_order_relaxed)) return;
    requested_stop_ = options;
    stop_requested_at_ = std::chrono::steady_clock::now();
    stop_requested_.store(true, std::memory_order_release);
  }
  Lifecycle expected = Lifecycle::running;
  if (!lifecycle_.compare_exchange_strong(expected, Lifecycle::stopping, std::memory_order_acq_rel)) {
    expected = Lifecycle::starting;
    lifecycle_.compare_exchange_strong(expected, Lifecycle::stopping, std::memory_order_acq_rel);
  }
  wake_full_waiters();  // they wait for room no longer: the loop refuses work now
  push(stop_command_);
}

bool LoopCore::wait_finished(std::chrono::steady_clock::time_point deadline) {
  return wait_latch(finished_, deadline);
}

bool LoopCore::wait_released(std::chrono::steady_clock::time_point deadline) {
  if (!wait_finished(deadline)) return false;
  const std::shared_ptr<WorkerPool> pool = retired_workers_.lock();  // written before finished_ opened
  return !pool || pool->wait_idle(deadline);
}

std::chrono::nanoseconds LoopCore::stop_budget(const StopOptions& options) const {
  StopOptions stop = options;
  {
    std::lock_guard lock(latch_mutex_);
    if (stop_requested_.load(std::memory_order_relaxed)) stop = requested_stop_;
  }
  std::size_t stop_hooks = 0;
  for (const auto& entry : hooks_) stop_hooks += entry.on_stop ? 1 : 0;
  auto phases = [stop_hooks](const StopOptions& o) {
    std::chrono::nanoseconds budget = saturating_add(o.drain_timeout, o.cancel_timeout);
    for (std::size_t i = 0; i < stop_hooks; ++i) budget = saturating_add(budget, saturating_add(o.hook_timeout, o.cancel_timeout));
    return budget;
  };
  std::chrono::nanoseconds budget = phases(stop);
  // After the deadlines the thread still destroys what it gave up (frames, callables).
  const std::uint64_t in_flight = queued() + running_.load(std::memory_order_relaxed);
  budget = saturating_add(budget, std::chrono::nanoseconds(kTeardownPerTask.count() * static_cast<std::int64_t>(
                                                                std::min<std::uint64_t>(in_flight, 1'000'000'000))));
  if (start_pending_.load(std::memory_order_acquire)) {
    // The stop waits for the start to end; a start that fails instead undoes itself with the
    // destructor's deadlines.
    budget = std::max(budget, phases(options_.destructor_stop));
    budget = saturating_add(budget, saturating_add(options_.start_timeout, options_.destructor_stop.cancel_timeout));
  }
  return budget;
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
  r.abandoned_tasks = abandoned_tasks_;
  r.duration = stop_duration_;
  return r;
}

}  // namespace loopbridge::detail

namespace loopbridge {

ErrorHandler set_error_handler(ErrorHandler handler) {
  auto replacement = handler ? std::make_shared<const ErrorHandler>(std::move(handler)) : nullptr;
  std::shared_ptr<const ErrorHandler> previous;  // copied and destroyed after the unlock
  {
    detail::ProcessErrorHandler& slot = detail::process_error_handler_slot();
    std::lock_guard lock(slot.mutex);
    previous = std::exchange(slot.handler, std::move(replacement));
  }
  return previous ? *previous : ErrorHandler{};
}

std::string TaskInfo::to_string() const {
  std::string line = name.empty() ? std::string("(unnamed)") : name;
  line += " (";
  line += where.file_name();
  line += ':';
  line += std::to_string(where.line());
  line += ", age ";
  line += std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(age).count());
  line += " ms, ";
  line += phase == TaskPhase::running ? "running" : "cancelling";
  line += ')';
  return line;
}

}  // namespace loopbridge

#include "drain.hpp"

#include "admission.hpp"
#include "loop_core.hpp"

#include <loopbridge/loop/detail/task_state.hpp>

#include <boost/asio/post.hpp>

#include <thread>
#include <utility>

namespace loopbridge::detail {

/// Hands Asio the drain's wake slot for the drain handler's operation. Only one wake-up is
/// pending at a time (CommandDrain::wake), and Asio frees an operation's memory before it
/// calls the handler, so the slot is always free when a new one is posted.
template <class T>
class WakeAllocator {
public:
  using value_type = T;
  explicit WakeAllocator(CommandDrain& drain) noexcept : drain_(&drain) {}
  template <class U>
  WakeAllocator(const WakeAllocator<U>& other) noexcept : drain_(other.drain_) {}

  T* allocate(std::size_t n) noexcept {
    static_assert(sizeof(T) <= CommandDrain::kWakeSlotSize && alignof(T) <= alignof(std::max_align_t),
                  "the wake slot is too small for Asio's operation");
    (void)n;  // always 1
    return reinterpret_cast<T*>(drain_->wake_slot_);
  }
  void deallocate(T*, std::size_t) noexcept {}

  friend bool operator==(const WakeAllocator& a, const WakeAllocator& b) noexcept { return a.drain_ == b.drain_; }
  friend bool operator!=(const WakeAllocator& a, const WakeAllocator& b) noexcept { return a.drain_ != b.drain_; }

private:
  template <class>
  friend class WakeAllocator;
  CommandDrain* drain_;
};

namespace {

struct DrainHandler {
  LoopCore* core;
  using allocator_type = WakeAllocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(core->drain()); }
  void operator()() const noexcept {
    core->drain().wake_taken();
    core->run_commands();
  }
};

// For a borrowed io_context, which may hold it past the loop's end: it keeps the core alive.
struct BorrowedDrainHandler {
  Ref<LoopCore> core;
  using allocator_type = WakeAllocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(core->drain()); }
  void operator()() const noexcept {
    core->drain().wake_taken();
    core->run_commands_borrowed();
  }
};

}  // namespace

CommandDrain::CommandDrain(LoopCore& core, boost::asio::io_context& io, bool borrowed_io,
                           std::chrono::nanoseconds spin_before_sleep) noexcept
    : core_(core), io_(io), borrowed_io_(borrowed_io), spin_before_sleep_(spin_before_sleep) {}

bool CommandDrain::push(Command& command) noexcept {
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

void CommandDrain::wake() noexcept {
  // Either this exchange sees the pending handler's wake_taken() and posts, or that
  // handler's exchange sees this one, and with it the command just pushed. Posting into
  // the wake slot allocates nothing: a queued command can never be left without a wake-up.
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  if (borrowed_io_) {
    boost::asio::post(io_, BorrowedDrainHandler{Ref<LoopCore>::share(&core_)});
  } else {
    boost::asio::post(io_, DrainHandler{&core_});
  }
}

Command* CommandDrain::take_batch() noexcept {
  if (unfinished_batch_ != nullptr) return std::exchange(unfinished_batch_, nullptr);
  Command* command = queue_.take_all();
  if (command != nullptr) ++batches_taken_;
  return command;
}

void CommandDrain::drain(Admission& admission) noexcept {
  std::size_t budget = kCommandsPerDrain;
  for (;;) {
    Command* command = take_batch();
    batch_clock_valid_ = false;  // the clock has moved on since the previous batch
    while (command != nullptr) {
      if (budget-- == 0) {
        // The rest waits behind what the io_context holds: a deadline's timer, say.
        unfinished_batch_ = command;
        batch_clock_armed_ = false;
        admission.wake_full_waiters();
        wake();
        return;
      }
      Command* next = command->next_in_queue;
      queue_.ran_one();
      batch_clock_armed_ = std::exchange(batch_clock_valid_, false);
      command->execute(core_);
      command = next;
    }
    batch_clock_armed_ = false;
    admission.wake_full_waiters();
    // Low-latency mode: a command arriving within the spin runs now. Its producer found the
    // queue empty and posted a drain as well, which will find nothing: harmless.
    if (!spin_until([this] { return queue_.has_commands(); }, spin_before_sleep_)) return;
  }
}

void CommandDrain::close_and_discard() noexcept {
  Command* rest = queue_.close();
  if (rest != nullptr) ++batches_taken_;
  // The part of a batch still waiting is older than what the queue held.
  for (Command* command : {std::exchange(unfinished_batch_, nullptr), rest}) {
    while (command != nullptr) {
      Command* next = command->next_in_queue;
      command->discard(core_);
      queue_.ran_one();
      command = next;
    }
  }
}

void CommandDrain::wait_for_late_wakes() const noexcept {
  // Every batch the loop took began with a push that found the queue empty, and that push's
  // thread posts a wake-up after it. One may have been preempted between the two. It is a
  // few instructions from done.
  while (first_push_wakes_.load(std::memory_order_acquire) != batches_taken_) std::this_thread::yield();
}

}  // namespace loopbridge::detail

#pragma once

#include <loopbridge/loop/detail/ref.hpp>
#include <loopbridge/loop/errors.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

namespace loopbridge::detail {

/// Told once when a state settles, on the thread that settles it.
class Continuation {
public:
  virtual void on_settled() noexcept = 0;

protected:
  ~Continuation() = default;
};

/// Busy-waits until `done()` or `limit` has passed; true if done() held. Pauses the CPU
/// between checks and reads the clock only now and then.
template <class Done>
bool spin_until(Done done, std::chrono::nanoseconds limit) {
  if (limit <= std::chrono::nanoseconds::zero()) return done();
  const auto now = std::chrono::steady_clock::now();
  const auto until = limit >= std::chrono::steady_clock::time_point::max() - now ? std::chrono::steady_clock::time_point::max()
                                                                                : now + limit;
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) return done();
  }
}

/// Throws DeadlockError when the calling thread runs a loop: a blocking wait there could
/// wait on the very thread that has to make progress.
void check_may_block(const char* what);

/// Set in a process made by fork() from one that had created a loop (in the child's
/// pthread_atfork handler): from then on a blocking wait first checks that its loop has a
/// thread in this process.
inline std::atomic<bool> g_forked_child{false};
class Engine;
/// LoopStopped when `loop` was started by the parent of this fork() child.
void check_loop_not_forked_away(const Engine* loop);

/// The settle-once part of a task's shared state: a "done" word that host threads can block
/// on with or without a deadline (a futex on Linux), and one continuation slot for waiters
/// that must not block (coroutines on another loop, future adapters).
class StateBase : public RefCounted {
public:
  explicit StateBase(std::uint32_t initial_refs = 1) noexcept : RefCounted(initial_refs) {}

  bool ready() const noexcept { return (word_.load(std::memory_order_acquire) & kDone) != 0; }

  /// Blocks until settled, first spinning for up to `spin`. Throws DeadlockError on a loop
  /// thread.
  void wait(std::chrono::nanoseconds spin) const;
  /// Blocks until settled or the deadline; true if settled. Throws DeadlockError on a loop
  /// thread.
  bool wait_until(std::chrono::steady_clock::time_point deadline, std::chrono::nanoseconds spin) const;

  /// Registers `c` to be told when this settles. False if already settled (`c` is not
  /// registered). Throws InvalidState if another continuation is registered.
  bool set_continuation(Continuation& c);
  /// Takes `c` back. True if it was still registered: it will not be told.
  bool reclaim_continuation(Continuation& c) noexcept;

  /// Wakes a host thread blocked on this state so that it serves its host calls.
  void interrupt_wait() const noexcept;

  /// The last handle that could read the outcome is gone, unread. A failure of the task's
  /// own (settled now or later) then goes to its loop's error handler, once: nobody else can
  /// see it any more (asyncio's "Task exception was never retrieved").
  void handle_dropped() noexcept;

  /// True when the state settled because a stop gave its task up while it still ran
  /// (abandoned at the cancel deadline, or dropped): what is left of the task (its frame, a
  /// function it handed off) may run or be destroyed until the loop has ended.
  virtual bool left_running_by_stop() const noexcept { return false; }

  /// Asks the owner of this state to cancel the work behind it, for `cause`. False when
  /// there is nothing left to cancel (already settled, or nothing cancellable).
  virtual bool request_cancel(CancelCause cause) noexcept {
    (void)cause;
    return false;
  }

protected:
  /// Publishes the stored result: wakes blocked waiters, then tells the continuation.
  /// The caller must hold a reference across the call.
  void publish() noexcept;

  /// Settled, and no handle can read the outcome any more: reports it if it is a failure
  /// that matters (a task's own exception). Called once, on whichever thread saw both.
  virtual void report_unread_outcome() noexcept {}

private:
  static constexpr std::uint32_t kDone = 1;
  static constexpr std::uint32_t kWaiters = 2;
  static constexpr std::uint32_t kUnread = 4;  // handle_dropped()
  // The bits above count host calls posted to hosts waiting here: each post changes the
  // word, so a host about to sleep on an older value wakes at once (nobody clears it).
  static constexpr std::uint32_t kHostCallUnit = 8;

  bool wait_impl(const std::chrono::steady_clock::time_point* deadline, std::chrono::nanoseconds spin) const;

  mutable std::atomic<std::uint32_t> word_{0};
  std::atomic<Continuation*> continuation_{nullptr};
};

struct Unit {};

/// Maps void to Unit so that results can be stored uniformly.
template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, Unit, T>;

/// A StateBase that holds a T or an exception. (Its own storage rather than a std::variant:
/// this header is in every file that includes loopbridge, and <variant> is a large part of
/// what it costs the compiler.)
template <class T>
class TypedState : public StateBase {
public:
  static_assert(!std::is_reference_v<T>, "loopbridge tasks return values, not references");

  explicit TypedState(std::uint32_t initial_refs = 1) noexcept : StateBase(initial_refs) {}
  ~TypedState() override { clear(); }

  template <class... Args>
  void set_value(Args&&... args) {
    clear();
    ::new (static_cast<void*>(&value_)) Value(std::forward<Args>(args)...);
    holds_ = Holds::value;
    publish();
  }

  void set_exception(std::exception_ptr e) noexcept {
    clear();
    ::new (static_cast<void*>(&error_)) std::exception_ptr(std::move(e));
    holds_ = Holds::error;
    publish();
  }

  /// The stored exception (null for a value). Only after ready(), before take().
  std::exception_ptr stored_exception() const noexcept { return holds_ == Holds::error ? error_ : nullptr; }

  /// Moves the result out, or rethrows the stored exception. Only after ready(), once.
  T take() {
    if (holds_ == Holds::error) {
      std::exception_ptr e = std::move(error_);
      clear();
      std::rethrow_exception(std::move(e));
    }
    if constexpr (std::is_void_v<T>) {
      clear();
    } else {
      T value = std::move(value_);
      clear();
      return value;
    }
  }

private:
  enum class Holds : unsigned char { nothing, value, error };

  using Value = Stored<T>;

  void clear() noexcept {
    if (holds_ == Holds::value) value_.~Value();
    if (holds_ == Holds::error) error_.~exception_ptr();
    holds_ = Holds::nothing;
  }

  union {
    Value value_;
    std::exception_ptr error_;
  };
  Holds holds_ = Holds::nothing;
};

/// Runs `invoke()`, then `drop()` (destroys the callable, so its captures are gone before
/// anyone sees the result), then settles `state` with the value or the exception.
template <class R, class Invoke, class Drop>
void settle_from(TypedState<R>& state, Invoke&& invoke, Drop&& drop) noexcept {
  try {
    if constexpr (std::is_void_v<R>) {
      invoke();
      drop();
      state.set_value();
    } else {
      auto value = invoke();
      drop();
      state.set_value(std::move(value));
    }
  } catch (...) {
    drop();
    state.set_exception(std::current_exception());
  }
}

}  // namespace loopbridge::detail

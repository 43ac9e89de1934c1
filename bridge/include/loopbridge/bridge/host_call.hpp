#pragma once

#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/await.hpp>
#include <loopbridge/loop/detail/loop_core.hpp>
#include <loopbridge/loop/detail/task.hpp>
#include <loopbridge/loop/errors.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

/// @file
/// Calls from a task back into the host thread that is blocked waiting for it (asgiref's
/// thread-sensitive mode: objects that only their owning thread may touch).

namespace loopbridge {

namespace detail {

/// A callable a task sends to its waiting host thread, and its result.
class HostCallBase {
public:
  virtual ~HostCallBase() = default;
  virtual void run() noexcept = 0;
  virtual void refuse() noexcept = 0;
  virtual RefCounted& refs() noexcept = 0;
  std::shared_ptr<const ContextData> context;
};

/// The host side of run(): a mailbox of host calls, served by the blocked host thread until
/// the task settles or the deadline passes.
class HostWaiter final : public RefCounted, public Continuation {
public:
  /// Host thread: starts watching the task (a reference is held while registered).
  void watch(StateBase& task) {
    task_ = &task;
    add_ref();
    if (!task.set_continuation(*this)) {
      settled_now();
      release();
    }
  }

  /// Host thread: runs host calls until the task settles (true) or the deadline (false).
  bool serve_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait_until(lock, deadline, [&] { return done_ || !calls_.empty(); });
      if (!calls_.empty()) {
        HostCallBase* call = calls_.front();
        calls_.pop_front();
        lock.unlock();
        {
          ContextScope scope{Context(call->context)};
          call->run();
        }
        call->refs().release();
        lock.lock();
        continue;
      }
      return done_;
    }
  }

  /// Host thread: stops waiting; pending and later calls fail with HostNotWaiting.
  void close() noexcept {
    std::deque<HostCallBase*> refused;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      refused.swap(calls_);
    }
    for (HostCallBase* call : refused) {
      call->refuse();
      call->refs().release();
    }
    // A task still running keeps no reference to a host that left.
    if (task_ && task_->reclaim_continuation(*this)) release();
  }

  /// Loop thread: hands a call to the host. False if the host no longer waits.
  bool post(HostCallBase& call) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    call.refs().add_ref();
    calls_.push_back(&call);
    cv_.notify_one();
    return true;
  }

  void on_settled() noexcept override {
    settled_now();
    release();
  }

private:
  void settled_now() noexcept {
    std::lock_guard lock(mutex_);
    done_ = true;
    cv_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<HostCallBase*> calls_;
  StateBase* task_ = nullptr;
  bool done_ = false;
  bool closed_ = false;
};

template <class R, class F>
class HostCall final : public TypedState<R>, public HostCallBase {
public:
  template <class G>
  explicit HostCall(G&& fn) : TypedState<R>(1), fn_(std::forward<G>(fn)) {}

  void run() noexcept override {
    settle_from(*this, [this]() -> R { return std::invoke(*fn_); }, [this] { fn_.reset(); });
  }

  void refuse() noexcept override {
    this->set_exception(std::make_exception_ptr(HostNotWaiting("the host stopped waiting before it ran the call")));
  }

  RefCounted& refs() noexcept override { return *this; }

private:
  std::optional<F> fn_;
};

template <class R>
boost::asio::awaitable<R> await_host_call(Ref<TypedState<R>> result, HostCallBase& call) {
  auto executor = co_await boost::asio::this_coro::executor;
  TaskBase* task = task_of(executor);
  auto* waiter = task ? static_cast<HostWaiter*>(task->host_waiter.get()) : nullptr;
  if (waiter == nullptr) throw HostNotWaiting("no host thread is blocked in run() on this task");
  call.context = task->context;
  if (!waiter->post(call)) throw HostNotWaiting("the host thread stopped waiting for this task");
  // The host runs the call to its end: a cancel of this task waits for it.
  auto wait = await_result<R>(std::move(result), OnCancel::stop_and_wait);
  co_return co_await std::move(wait);
}

}  // namespace detail

/// Runs `fn` on the host thread that is blocked in run() on the calling task, and resumes
/// the task with its result or exception.
/**
 * For objects that only their owning thread may touch (asgiref's thread-sensitive mode).
 * The host thread runs `fn` inside its run() call, with the task's context installed; `fn`
 * may itself call run() again (nesting to any depth: the loop is never blocked). Build the
 * awaitable in its own statement, then `co_await std::move(op)`.
 *
 * @par Throws
 * HostNotWaiting, at once, when the task was not started by run() or its host stopped
 * waiting (deadline passed); `fn`'s own exception.
 */
template <class F>
boost::asio::awaitable<std::invoke_result_t<std::decay_t<F>&>> call_host(F&& fn) {
  using Function = std::decay_t<F>;
  using Result = std::invoke_result_t<Function&>;
  detail::check_callable(fn);
  auto* call = new detail::HostCall<Result, Function>(std::forward<F>(fn));
  auto result = detail::Ref<detail::TypedState<Result>>::adopt(call);
  return detail::await_host_call<Result>(std::move(result), *call);
}

}  // namespace loopbridge

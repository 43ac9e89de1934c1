#pragma once

#include <loopbridge/loop/detail/command.hpp>
#include <loopbridge/loop/detail/engine.hpp>
#include <loopbridge/loop/detail/ref.hpp>
#include <loopbridge/loop/detail/task_state.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <exception>
#include <memory>
#include <utility>

namespace loopbridge::detail {

/// A coroutine on a loop waiting for a task's result without blocking (async_wait). The
/// loop it waits on keeps a list of these so that none outlives the loop's io_context.
class PendingWait : public Continuation, public Command {
public:
  /// Loop thread, at shutdown, after the continuation was taken back: destroy the waiting
  /// handler (and so the coroutine frame) here.
  virtual void destroy_now() noexcept = 0;
  /// True when the awaited work (a to_thread or call_host function) may use the waiting
  /// coroutine's frame until it returns: the frame must outlive it.
  virtual bool frame_used_by_work() const noexcept = 0;
  /// Loop thread, at its end, for a wait whose function still runs: the wait and its frame
  /// are never destroyed; this lets go of the loop, so that the rest of it is freed.
  virtual void keep_without_loop() noexcept = 0;
  /// The state whose continuation this is.
  virtual StateBase& awaited() noexcept = 0;

  PendingWait* prev_wait = nullptr;
  PendingWait* next_wait = nullptr;

protected:
  ~PendingWait() = default;
};

/// What a cancel of a coroutine waiting on some work does to the wait and to the work.
enum class OnCancel {
  /// The wait ends at once with operation_aborted; the work goes on alone.
  detach,
  /// The work is asked to stop (StateBase::request_cancel), and the wait ends at once.
  stop_and_detach,
  /// The work is asked to stop, and the wait goes on until it has ended.
  stop_and_wait,
};

/// A wait by a coroutine running on a loopbridge loop (its "home"). Everything it does
/// happens on the home thread: the settling thread only pushes it to the home's command
/// queue, and a cancel of the waiting coroutine takes it back and pushes it the same way.
///
/// What a cancel of the waiting coroutine does is the OnCancel given.
template <class Handler>
class HomeWait final : public PendingWait {
public:
  HomeWait(Ref<StateBase> awaited, Handler handler, Engine& home, OnCancel on_cancel)
      : awaited_(std::move(awaited)),
        handler_(std::move(handler)),
        home_(Ref<Engine>::share(&home)),
        on_cancel_(on_cancel) {}

  static void start(Ref<StateBase> awaited, Handler handler, Engine& home, OnCancel on_cancel) {
    auto node = std::make_unique<HomeWait>(std::move(awaited), std::move(handler), home, on_cancel);
    // Everything that may throw (out of memory) comes before the wait is registered: a
    // failed start leaves with the whole node.
    node->slot_ = boost::asio::get_associated_cancellation_slot(node->handler_);
    if (node->slot_.is_connected()) node->slot_.template emplace<CancelHandler>(node.get());
    const bool registered = node->awaited_->set_continuation(*node);
    HomeWait& self = *node.release();
    register_wait(home, self);
    if (!registered) self.on_settled();
  }

  void on_settled() noexcept override { enqueue(); }
  void execute(Engine&) noexcept override { complete(); }
  void discard(Engine&) noexcept override { destroy_now(); }
  StateBase& awaited() noexcept override { return *awaited_; }
  bool frame_used_by_work() const noexcept override { return on_cancel_ == OnCancel::stop_and_wait; }
  void keep_without_loop() noexcept override { home_ = Ref<Engine>(); }

  void destroy_now() noexcept override {
    detach();
    delete this;
  }

private:
  struct CancelHandler {
    explicit CancelHandler(HomeWait* waiting) noexcept : self(waiting) {}
    HomeWait* self;
    void operator()(boost::asio::cancellation_type_t) const noexcept {
      if (self->on_cancel_ != OnCancel::detach) self->awaited_->request_cancel(CancelCause::cancel);
      if (self->on_cancel_ == OnCancel::stop_and_wait) return;
      if (self->awaited_->reclaim_continuation(*self)) {
        self->aborted_ = true;
        self->enqueue();
      }
    }
  };

  void enqueue() noexcept {
    // Once pushed, this node may be run and freed at once: hold the loop for the push.
    Ref<Engine> home = home_;
    if (!push_command(*home, *this)) {
      // The home loop ended without taking this wait back (not expected: it reclaims them
      // before it closes). Its frame cannot be destroyed here, off its thread: leave it.
      report_error(*home, std::make_exception_ptr(LoopStopped("a wait outlived the loop it was to resume on; its coroutine stays suspended")), "async_wait");
    }
  }

  void detach() noexcept {
    unregister_wait(*home_, *this);
    if (slot_.is_connected()) slot_.clear();
  }

  void complete() noexcept {
    detach();
    boost::system::error_code ec;
    if (aborted_) ec = boost::asio::error::operation_aborted;
    Handler handler = std::move(handler_);
    auto executor = boost::asio::get_associated_executor(handler, loop_executor(*home_));
    Engine& home = *home_;  // alive: this runs on its thread, inside its drain
    delete this;
    if constexpr (std::is_same_v<decltype(executor), boost::asio::any_io_executor>) {
      if (TaskBase* task = task_of(executor)) {
        // A task's coroutine: resumed here as its executor would (a dispatch runs it
        // inline), without the type-erased dispatch's allocation.
        struct Resume {
          Handler& handler;
          boost::system::error_code ec;
          static void call(void* self) {
            auto& resume = *static_cast<Resume*>(self);
            std::move(resume.handler)(resume.ec);
          }
        } resume{handler, ec};
        run_stretch(*task, &Resume::call, &resume);
        return;
      }
    }
    try {
      boost::asio::dispatch(executor, [handler = std::move(handler), ec]() mutable { std::move(handler)(ec); });
    } catch (...) {
      // A completion handler that throws (a callback token): report, as Asio's run() would
      // have let the exception out to the loop.
      report_error(home, std::current_exception(), "async_wait completion handler");
    }
  }

  Ref<StateBase> awaited_;
  Handler handler_;
  Ref<Engine> home_;
  boost::asio::cancellation_slot slot_;
  OnCancel on_cancel_;
  bool aborted_ = false;
};

/// A wait from outside any loopbridge loop (a plain io_context, a callback): the result is
/// posted to the handler's executor, which is kept busy meanwhile. Not cancellable.
template <class Handler>
class ForeignWait final : public Continuation {
public:
  ForeignWait(Ref<StateBase> awaited, Handler handler)
      : awaited_(std::move(awaited)),
        handler_(std::move(handler)),
        work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_),
                                  boost::asio::execution::outstanding_work.tracked)) {}

  static void start(Ref<StateBase> awaited, Handler handler) {
    auto node = std::make_unique<ForeignWait>(std::move(awaited), std::move(handler));
    const bool registered = node->awaited_->set_continuation(*node);
    ForeignWait& self = *node.release();
    if (!registered) self.on_settled();
  }

  void on_settled() noexcept override {
    auto work = std::move(work_);
    Handler handler = std::move(handler_);
    delete this;
    boost::asio::post(work, [handler = std::move(handler)]() mutable { std::move(handler)(boost::system::error_code{}); });
  }

private:
  Ref<StateBase> awaited_;
  Handler handler_;
  std::decay_t<decltype(boost::asio::prefer(boost::asio::get_associated_executor(std::declval<Handler&>()),
                                            boost::asio::execution::outstanding_work.tracked))>
      work_;
};

struct InitiateWait {
  /// detach for a TaskHandle: cancelling the waiter does not cancel the task.
  OnCancel on_cancel = OnCancel::detach;

  template <class Handler>
  void operator()(Handler&& handler, Ref<StateBase> awaited) const {
    using H = std::decay_t<Handler>;
    Engine* home = this_thread_engine();
    if (home != nullptr) {
      const auto home_executor = loop_executor(*home);
      boost::asio::any_io_executor target = boost::asio::get_associated_executor(handler, home_executor);
      // Same io_context, whatever properties the executor carries (a task's carries its task).
      if (&boost::asio::query(target, boost::asio::execution::context) == &home_executor.context()) {
        HomeWait<H>::start(std::move(awaited), std::forward<Handler>(handler), *home, on_cancel);
        return;
      }
    }
    ForeignWait<H>::start(std::move(awaited), std::forward<Handler>(handler));
  }
};

/// TaskHandle<T>::async_get()'s completion signature: co_spawn's.
template <class T>
struct get_signature {
  using type = void(std::exception_ptr, T);
};
template <>
struct get_signature<void> {
  using type = void(std::exception_ptr);
};
template <class T>
using get_signature_t = typename get_signature<T>::type;

/// From a coroutine on a loop: waits (without blocking) for `state` to settle, then returns
/// its value or rethrows its exception.
template <class R>
boost::asio::awaitable<R> await_result(Ref<TypedState<R>> state, OnCancel on_cancel) {
  auto wait = boost::asio::async_initiate<const boost::asio::use_awaitable_t<>, void(boost::system::error_code)>(
      InitiateWait{on_cancel}, boost::asio::use_awaitable, Ref<StateBase>(state));
  co_await std::move(wait);
  co_return state->take();
}

/// Calls a function with the settled handle, on the settling thread. What the function
/// throws goes to the loop's error handler.
template <class Handle, class Fn>
class SettledCallback final : public Continuation {
public:
  SettledCallback(Handle handle, Fn fn, Ref<Engine> loop)
      : handle_(std::move(handle)), fn_(std::move(fn)), loop_(std::move(loop)) {}

  /// Takes `handle` (the caller's keeps it when the state refuses a second continuation);
  /// `loop`: the engine the handle came from.
  static void start(StateBase& state, Handle& handle, Fn fn, Ref<Engine> loop) {
    auto node = std::make_unique<SettledCallback>(std::move(handle), std::move(fn), std::move(loop));
    bool registered = false;
    try {
      registered = state.set_continuation(*node);
    } catch (...) {
      handle = std::move(node->handle_);
      throw;
    }
    SettledCallback& self = *node.release();
    if (!registered) self.on_settled();
  }

  void on_settled() noexcept override {
    std::unique_ptr<SettledCallback> self(this);
    try {
      std::move(fn_)(std::move(handle_));
    } catch (...) {
      report_error(*loop_, std::current_exception(), "on_settled callback");
    }
  }

private:
  Handle handle_;
  Fn fn_;
  Ref<Engine> loop_;
};

}  // namespace loopbridge::detail

#pragma once

#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/call_rules.hpp>
#include <loopbridge/loop/detail/ref.hpp>
#include <loopbridge/loop/detail/task_state.hpp>
#include <loopbridge/loop/stop_token.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <type_traits>

namespace loopbridge::detail {

class Engine;

/// A function a task hands to another thread to run (a worker for to_thread, the waiting
/// host for call_host), with the state its result settles.
class HandoffCall {
public:
  virtual ~HandoffCall() = default;
  /// On the receiving thread: runs the function and settles the state.
  virtual void run() noexcept = 0;
  /// Settles without running (the receiver went away first).
  virtual void refuse() noexcept = 0;
  virtual RefCounted& refs() noexcept = 0;

  /// The task's context, installed on the receiving thread while the function runs.
  std::shared_ptr<const ContextData> context;
  /// The loop whose task handed the call over (for a host call).
  const Engine* owner = nullptr;
  /// The receiving host's mailbox is a list of these links: handing a call over allocates
  /// nothing.
  HandoffCall* next_in_mailbox = nullptr;
};

/// A handed-off function and the state its result settles. If F takes a std::stop_token,
/// cancelling the awaiting task requests stop on it.
template <class F, class Refusal>
class HandoffState final : public TypedState<handoff_result_t<F>>, public HandoffCall {
public:
  using Result = handoff_result_t<F>;

  /// `refusal` makes the exception the state settles with when the call is refused. F is
  /// constructed in place from `parts` (the function, then the arguments bound to it).
  template <class... Parts>
  HandoffState(Refusal refusal, Parts&&... parts)
      : TypedState<Result>(1), fn_(std::in_place, std::forward<Parts>(parts)...), refusal_(std::move(refusal)) {}

  void run() noexcept override {
    settle_from(*this, [this]() -> Result { return invoke(); }, [this] { fn_.reset(); });
  }

  void refuse() noexcept override {
    fn_.reset();
    this->set_exception(refusal_());
  }

#if LOOPBRIDGE_HAS_STOP_TOKEN
  bool request_cancel(CancelCause) noexcept override { return stop_.request_stop(); }
#else
  bool request_cancel(CancelCause) noexcept override { return false; }
#endif
  RefCounted& refs() noexcept override { return *this; }

private:
  Result invoke() {
#if LOOPBRIDGE_HAS_STOP_TOKEN
    if constexpr (takes_stop_token<F>) {
      return std::invoke(*fn_, stop_.get_token());
    } else {
      return std::invoke(*fn_);
    }
#else
    return std::invoke(*fn_);
#endif
  }

  std::optional<F> fn_;
  Refusal refusal_;
  // A stop state is allocated only for a function that can observe it.
#if LOOPBRIDGE_HAS_STOP_TOKEN
  std::stop_source stop_ = takes_stop_token<F> ? std::stop_source() : std::stop_source(std::nostopstate);
#endif
};

}  // namespace loopbridge::detail

#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <utility>
#include <vector>

/// @file
/// A small typed context that follows work across the hop (folly's RequestContext, Python's
/// contextvars): captured when a task is submitted, visible inside the task, and inside the
/// host callbacks and offloaded functions it starts.

namespace loopbridge {

namespace detail {

struct ContextEntry {
  const void* key;
  std::shared_ptr<const void> value;
};
using ContextData = std::vector<ContextEntry>;

template <class T>
const void* context_key() noexcept {
  static const char key = 0;
  return &key;
}

/// This thread's current context (null: empty).
const std::shared_ptr<const ContextData>& this_thread_context() noexcept;
/// Replaces this thread's current context; returns the previous one.
std::shared_ptr<const ContextData> exchange_this_thread_context(std::shared_ptr<const ContextData> data) noexcept;

}  // namespace detail

/// An immutable set of values keyed by their type. Cheap to copy (shared).
/**
 * @par Thread safety
 * Immutable: safe to share between threads.
 */
class Context {
public:
  /// An empty context.
  Context() noexcept = default;
  /// Internal: wraps captured context data.
  explicit Context(std::shared_ptr<const detail::ContextData> data) noexcept : data_(std::move(data)) {}

  /// The value of type T, or null.
  template <class T>
  const T* get() const noexcept {
    if (!data_) return nullptr;
    for (const auto& entry : *data_) {
      if (entry.key == detail::context_key<T>()) return static_cast<const T*>(entry.value.get());
    }
    return nullptr;
  }

  /// A copy with `value` as its T (replacing an earlier one).
  template <class T>
  Context with(T value) const {
    auto data = std::make_shared<detail::ContextData>();
    if (data_) {
      for (const auto& entry : *data_) {
        if (entry.key != detail::context_key<T>()) data->push_back(entry);
      }
    }
    data->push_back({detail::context_key<T>(), std::make_shared<const T>(std::move(value))});
    return Context(std::move(data));
  }

  /// True when the context holds no value.
  bool empty() const noexcept { return !data_ || data_->empty(); }
  /// Internal: the shared data, for ContextScope.
  const std::shared_ptr<const detail::ContextData>& data() const noexcept { return data_; }

private:
  std::shared_ptr<const detail::ContextData> data_;
};

/// The calling thread's context: the one a ContextScope installed on a host thread; the
/// task's own inside a host callback (call_host) or an offloaded function (to_thread); on a
/// loop thread, the running task's (in a coroutine, on every stretch between suspensions;
/// `co_await this_task_context()` says the same).
inline Context current_context() noexcept { return Context(detail::this_thread_context()); }

/// Shorthand: `current_context().get<T>()`.
template <class T>
const T* context_value() noexcept {
  return current_context().get<T>();
}

/// Installs a context on this thread for the scope's life; submissions made meanwhile
/// capture it.
/**
 * @par Thread safety
 * Affects the calling thread only. Scopes nest; destroy them in reverse order.
 */
class ContextScope {
public:
  /// Installs `context` on this thread until the scope ends.
  explicit ContextScope(Context context) noexcept
      : previous_(detail::exchange_this_thread_context(context.data())) {}
  /// Adds (or replaces) one value on top of the current context.
  template <class T>
  static Context with(T value) {
    return current_context().with(std::move(value));
  }
  ~ContextScope() { detail::exchange_this_thread_context(std::move(previous_)); }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

private:
  std::shared_ptr<const detail::ContextData> previous_;
};

/// The context of the task whose coroutine awaits this (captured when it was submitted).
/// Empty outside a loopbridge task.
boost::asio::awaitable<Context> this_task_context();

}  // namespace loopbridge

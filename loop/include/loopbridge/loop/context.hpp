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

/// The value stored under `key` in `data` (which may be null), or null. Out of line, as
/// with_context_value(): in the header they would instantiate the vector's code in every file.
const void* find_context_value(const ContextData* data, const void* key) noexcept;
/// A copy of `data` (which may be null) with `value` under `key`, replacing an earlier one.
std::shared_ptr<const ContextData> with_context_value(const ContextData* data, const void* key,
                                                      std::shared_ptr<const void> value);

/// This thread's current context (null: empty).
const std::shared_ptr<const ContextData>& this_thread_context() noexcept;
/// Replaces this thread's current context; returns the previous one.
std::shared_ptr<const ContextData> exchange_this_thread_context(std::shared_ptr<const ContextData> data) noexcept;

class TaskBase;

/// What a ContextScope undoes when it ends.
struct ScopeUndo {
  std::shared_ptr<const ContextData> previous;
  /// The task whose work was running where the scope began (null: none), and what the
  /// scope put there.
  TaskBase* task = nullptr;
  const ContextData* installed = nullptr;
};

/// ContextScope's halves: inside a task's work on a loop thread, the task's own context
/// follows, so that its coroutine keeps the scope's context after a co_await.
ScopeUndo enter_context_scope(std::shared_ptr<const ContextData> data) noexcept;
void leave_context_scope(ScopeUndo undo) noexcept;

/// Loop thread: installs a task's context for one stretch of its work (and makes the task
/// the one whose context a ContextScope opened there updates).
class TaskContextInstall {
public:
  explicit TaskContextInstall(TaskBase& task) noexcept;
  ~TaskContextInstall();
  TaskContextInstall(const TaskContextInstall&) = delete;
  TaskContextInstall& operator=(const TaskContextInstall&) = delete;

private:
  std::shared_ptr<const ContextData> outer_;
  TaskBase* outer_task_;
};

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
    return static_cast<const T*>(detail::find_context_value(data_.get(), detail::context_key<T>()));
  }

  /// A copy with `value` as its T (replacing an earlier one).
  template <class T>
  Context with(T value) const {
    return Context(detail::with_context_value(data_.get(), detail::context_key<T>(),
                                              std::make_shared<const T>(std::move(value))));
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
 * Inside a task's coroutine the scope sets the task's context for the scope's life, across
 * its co_awaits (as `ContextVar.set()` inside an asyncio task): current_context(),
 * this_task_context(), and what the task submits, offloads (to_thread) or calls back
 * (call_host) see it. A coroutine co_spawned on the task's executor shares the task's
 * context, and so does code that runs inline inside the task's work (a coroutine co_spawned
 * on the loop's executor, up to its first suspension). A scope that ends outside the work
 * it began in (its frame destroyed by a stop) changes nothing.
 *
 * @par Thread safety
 * Affects the calling thread (or task) only. Scopes nest; destroy them in reverse order.
 */
class ContextScope {
public:
  /// Installs `context` on this thread until the scope ends.
  explicit ContextScope(Context context) noexcept : undo_(detail::enter_context_scope(context.data())) {}
  /// Adds (or replaces) one value on top of the current context.
  template <class T>
  static Context with(T value) {
    return current_context().with(std::move(value));
  }
  ~ContextScope() { detail::leave_context_scope(std::move(undo_)); }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

private:
  detail::ScopeUndo undo_;
};

/// The context of the task whose coroutine awaits this: captured when it was submitted, or
/// the one a ContextScope inside it set. Empty outside a loopbridge task.
boost::asio::awaitable<Context> this_task_context();

}  // namespace loopbridge

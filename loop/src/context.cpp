#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/loop_core.hpp>

#include <boost/asio/this_coro.hpp>

namespace loopbridge {
namespace detail {
namespace {

thread_local std::shared_ptr<const ContextData> t_context;
constinit thread_local std::shared_ptr<const ContextData>* t_task_context = nullptr;

}  // namespace

const std::shared_ptr<const ContextData>& this_thread_context() noexcept { return t_context; }

std::shared_ptr<const ContextData> exchange_this_thread_context(std::shared_ptr<const ContextData> data) noexcept {
  std::swap(t_context, data);
  return data;
}

std::shared_ptr<const ContextData>* exchange_this_thread_task_context(
    std::shared_ptr<const ContextData>* task_context) noexcept {
  return std::exchange(t_task_context, task_context);
}

ScopeUndo enter_context_scope(std::shared_ptr<const ContextData> data) noexcept {
  ScopeUndo undo{nullptr, t_task_context, data.get()};
  if (t_task_context != nullptr) *t_task_context = data;
  undo.previous = exchange_this_thread_context(std::move(data));
  return undo;
}

void leave_context_scope(ScopeUndo undo) noexcept {
  // Only where the scope began: elsewhere (a frame destroyed by a stop, outside any work of
  // its task) the task may be gone, and the thread's context is not the scope's to undo.
  if (t_task_context != undo.task_context) return;
  // A later scope that is still open (ended out of order) keeps its own value.
  if (undo.task_context != nullptr && undo.task_context->get() == undo.installed) {
    *undo.task_context = undo.previous;
  }
  exchange_this_thread_context(std::move(undo.previous));
}

}  // namespace detail

boost::asio::awaitable<Context> this_task_context() {
  auto executor = co_await boost::asio::this_coro::executor;
  detail::TaskBase* task = detail::task_of(executor);
  co_return task ? Context(task->context) : Context();
}

}  // namespace loopbridge

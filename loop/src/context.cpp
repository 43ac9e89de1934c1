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

std::shared_ptr<const ContextData> enter_context_scope(std::shared_ptr<const ContextData> data) noexcept {
  if (t_task_context != nullptr) *t_task_context = data;
  return exchange_this_thread_context(std::move(data));
}

void leave_context_scope(std::shared_ptr<const ContextData> previous) noexcept {
  // The end of a scope opened in an earlier stretch of the same task: the task's context
  // goes back too. (Outside any stretch, when a dropped frame is destroyed, only the thread's.)
  if (t_task_context != nullptr) *t_task_context = previous;
  exchange_this_thread_context(std::move(previous));
}

}  // namespace detail

boost::asio::awaitable<Context> this_task_context() {
  auto executor = co_await boost::asio::this_coro::executor;
  detail::TaskBase* task = detail::task_of(executor);
  co_return task ? Context(task->context) : Context();
}

}  // namespace loopbridge

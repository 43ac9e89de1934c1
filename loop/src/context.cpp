#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/loop_core.hpp>

#include <boost/asio/this_coro.hpp>

namespace loopbridge {
namespace detail {
namespace {

thread_local std::shared_ptr<const ContextData> t_context;

}  // namespace

const std::shared_ptr<const ContextData>& this_thread_context() noexcept { return t_context; }

std::shared_ptr<const ContextData> exchange_this_thread_context(std::shared_ptr<const ContextData> data) noexcept {
  std::swap(t_context, data);
  return data;
}

}  // namespace detail

boost::asio::awaitable<Context> this_task_context() {
  auto executor = co_await boost::asio::this_coro::executor;
  detail::TaskBase* task = detail::task_of(executor);
  co_return task ? Context(task->context) : Context();
}

}  // namespace loopbridge

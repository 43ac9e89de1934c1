#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/detail/task.hpp>

#include <boost/asio/this_coro.hpp>

#include <new>

namespace loopbridge {
namespace detail {
namespace {

using ContextPtr = std::shared_ptr<const ContextData>;

// The thread's context lives in raw storage, which is trivially destructible: still readable
// from destructors that run after the thread's thread_local objects are gone (and, on the
// thread that calls exit(), while static ones are destroyed). The owner below lets go of the
// context when the thread ends; the storage itself stays an empty pointer from then on.
struct ContextStorage {
  alignas(ContextPtr) unsigned char bytes[sizeof(ContextPtr)];
};
constinit thread_local ContextStorage t_context_storage{};
constinit thread_local bool t_context_made = false;
constinit thread_local bool t_context_released = false;
constinit thread_local TaskBase* t_task = nullptr;  // the task whose work runs now

ContextPtr& context_slot() noexcept;

struct ContextOwner {
  bool armed = false;
  ~ContextOwner() {
    t_context_released = true;
    context_slot().reset();
  }
};
thread_local ContextOwner t_context_owner;

ContextPtr& context_slot() noexcept {
  if (!t_context_made) {
    ::new (static_cast<void*>(t_context_storage.bytes)) ContextPtr();
    t_context_made = true;
    // Registers the owner's destructor, unless the thread is already past it (a context set
    // that late is kept until the process ends).
    if (!t_context_released) t_context_owner.armed = true;
  }
  return *std::launder(reinterpret_cast<ContextPtr*>(t_context_storage.bytes));
}

void set_task_context(TaskBase& task, const ContextPtr& data) noexcept {
  try {
    task.set_context(data);
  } catch (...) {
    // Out of memory for the task's block of extras: the scope holds on this thread but does
    // not follow the task across a co_await.
  }
}

}  // namespace

const void* find_context_value(const ContextData* data, const void* key) noexcept {
  if (!data) return nullptr;
  for (const ContextEntry& entry : *data) {
    if (entry.key == key) return entry.value.get();
  }
  return nullptr;
}

std::shared_ptr<const ContextData> with_context_value(const ContextData* data, const void* key,
                                                      std::shared_ptr<const void> value) {
  auto copy = std::make_shared<ContextData>();
  if (data) {
    for (const ContextEntry& entry : *data) {
      if (entry.key != key) copy->push_back(entry);
    }
  }
  copy->push_back({key, std::move(value)});
  return copy;
}

const std::shared_ptr<const ContextData>& this_thread_context() noexcept { return context_slot(); }

std::shared_ptr<const ContextData> exchange_this_thread_context(std::shared_ptr<const ContextData> data) noexcept {
  std::swap(context_slot(), data);
  return data;
}

TaskContextInstall::TaskContextInstall(TaskBase& task) noexcept
    : outer_(exchange_this_thread_context(task.context())), outer_task_(std::exchange(t_task, &task)) {}

TaskContextInstall::~TaskContextInstall() {
  t_task = outer_task_;
  exchange_this_thread_context(std::move(outer_));
}

ScopeUndo enter_context_scope(std::shared_ptr<const ContextData> data) noexcept {
  ScopeUndo undo{nullptr, t_task, data.get()};
  if (t_task != nullptr) set_task_context(*t_task, data);
  undo.previous = exchange_this_thread_context(std::move(data));
  return undo;
}

void leave_context_scope(ScopeUndo undo) noexcept {
  // Only where the scope began: elsewhere (a frame destroyed by a stop, outside any work of
  // its task) the task may be gone, and the thread's context is not the scope's to undo.
  if (t_task != undo.task) return;
  // A later scope that is still open (ended out of order) keeps its own value.
  if (undo.task != nullptr && undo.task->context().get() == undo.installed) set_task_context(*undo.task, undo.previous);
  exchange_this_thread_context(std::move(undo.previous));
}

}  // namespace detail

boost::asio::awaitable<Context> this_task_context() {
  auto executor = co_await boost::asio::this_coro::executor;
  detail::TaskBase* task = detail::task_of(executor);
  co_return task ? Context(task->context()) : Context();
}

}  // namespace loopbridge

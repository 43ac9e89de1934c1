// The engine's threads, as POSIX threads: std::thread cannot set a stack size, and
// Boost.Thread's compiled library ties every program that links loopbridge to the standard
// library Boost was built with.

#include "platform/platform.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <exception>
#include <system_error>
#include <utility>

namespace loopbridge::detail {

struct SystemThread::Started {
  std::function<void()> body;
  pthread_t handle{};
  std::atomic<std::uint32_t> finished{0};  // 1 once the body has returned: try_join_until() waits on it
};

namespace {

[[noreturn]] void throw_thread_error(int code, const char* what) {
  throw std::system_error(code, std::generic_category(), what);
}

extern "C" void* run_started_thread(void* argument) noexcept {
  // The thread's own share: what try_join_until() waits on outlives a detached handle.
  const std::unique_ptr<std::shared_ptr<SystemThread::Started>> own(
      static_cast<std::shared_ptr<SystemThread::Started>*>(argument));
  SystemThread::Started& started = **own;
  started.body();
  started.finished.store(1, std::memory_order_release);
  wake_all_waiters(started.finished);
  return nullptr;
}

// As Boost.Thread did: raised to the system's minimum, then rounded up to whole pages.
std::size_t usable_stack_size(std::size_t requested) {
  std::size_t size = requested;
#ifdef PTHREAD_STACK_MIN
  if (size < static_cast<std::size_t>(PTHREAD_STACK_MIN)) size = PTHREAD_STACK_MIN;
#endif
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) {
    const auto page_size = static_cast<std::size_t>(page);
    size = (size + page_size - 1) / page_size * page_size;
  }
  return size;
}

class ThreadAttributes {
public:
  explicit ThreadAttributes(std::size_t stack_size) {
    if (const int error = ::pthread_attr_init(&attributes_)) throw_thread_error(error, "pthread_attr_init");
    if (stack_size == 0) return;
    if (const int error = ::pthread_attr_setstacksize(&attributes_, usable_stack_size(stack_size))) {
      ::pthread_attr_destroy(&attributes_);
      throw_thread_error(error, "pthread_attr_setstacksize");
    }
  }
  ~ThreadAttributes() { ::pthread_attr_destroy(&attributes_); }
  ThreadAttributes(const ThreadAttributes&) = delete;
  ThreadAttributes& operator=(const ThreadAttributes&) = delete;
  const pthread_attr_t* get() const noexcept { return &attributes_; }

private:
  pthread_attr_t attributes_{};
};

}  // namespace

SystemThread::SystemThread(std::function<void()> body, std::size_t stack_size)
    : started_(std::make_shared<Started>()) {
  started_->body = std::move(body);
  const ThreadAttributes attributes(stack_size);
  auto share = std::make_unique<std::shared_ptr<Started>>(started_);
  if (const int error = ::pthread_create(&started_->handle, attributes.get(), run_started_thread, share.get())) {
    started_.reset();
    throw_thread_error(error, "cannot start a thread");
  }
  (void)share.release();  // the thread's now
}

SystemThread::SystemThread(SystemThread&& other) noexcept : started_(std::move(other.started_)) {}

SystemThread& SystemThread::operator=(SystemThread&& other) noexcept {
  if (joinable()) std::terminate();
  started_ = std::move(other.started_);
  return *this;
}

SystemThread::~SystemThread() {
  if (joinable()) std::terminate();
}

void SystemThread::join() {
  if (!joinable()) throw_thread_error(EINVAL, "join: no thread");
  if (::pthread_equal(started_->handle, ::pthread_self())) {
    throw_thread_error(EDEADLK, "join: a thread cannot join itself");
  }
  if (const int error = ::pthread_join(started_->handle, nullptr)) throw_thread_error(error, "pthread_join");
  started_.reset();
}

void SystemThread::detach() {
  if (!joinable()) throw_thread_error(EINVAL, "detach: no thread");
  if (const int error = ::pthread_detach(started_->handle)) throw_thread_error(error, "pthread_detach");
  started_.reset();
}

bool SystemThread::try_join_until(std::chrono::steady_clock::time_point deadline) {
  if (!joinable()) throw_thread_error(EINVAL, "join: no thread");
  std::atomic<std::uint32_t>& finished = started_->finished;
  while (finished.load(std::memory_order_acquire) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    wait_for_change(finished, 0, &deadline);
  }
  join();  // the body has returned: only the thread's own ending is left
  return true;
}

}  // namespace loopbridge::detail

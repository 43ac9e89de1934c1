#include <loopbridge/loop/errors.hpp>

namespace loopbridge {
namespace {

class LoopCategory final : public std::error_category {
public:
  const char* name() const noexcept override { return "loopbridge"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::task_cancelled: return "the task was cancelled";
      case errc::loop_stopped: return "the loop is stopped";
      case errc::task_abandoned: return "the task was abandoned at the loop's stop";
      case errc::deadlock: return "a blocking call was made on a loop thread";
      case errc::invalid_handle: return "the handle is empty";
      case errc::invalid_state: return "the call is not allowed in the object's current state";
      case errc::invalid_argument: return "an argument is unusable";
      case errc::timeout: return "a deadline passed";
      case errc::host_not_waiting: return "no host thread is waiting on the task";
      case errc::queue_full: return "the loop's queue is full";
      case errc::backend_unavailable: return "the I/O backend is unavailable";
    }
    return "an unknown loopbridge error";
  }
};

// Made before any dynamic initialisation and never destroyed: errors are built during exit
// too (a static loop's stop, the default loop's exit hook, a detached thread), after every
// object with a destructor could already be gone.
union CategoryStorage {
  LoopCategory category;
  constexpr CategoryStorage() : category() {}
  ~CategoryStorage() {}
};
constinit const CategoryStorage g_category;

}  // namespace

const std::error_category& loop_category() noexcept { return g_category.category; }

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), loop_category()};
}

Error::Error(errc code, const std::string& what) : std::system_error(make_error_code(code)), message_(what) {}
const char* Error::what() const noexcept { return message_.what(); }
TaskCancelled::TaskCancelled(const std::string& what) : TaskCancelled(CancelCause::cancel, what) {}
TaskCancelled::TaskCancelled(CancelCause cause, const std::string& what)
    : Error(errc::task_cancelled, what), cause_(cause) {}

const char* to_string(CancelCause cause) noexcept {
  switch (cause) {
    case CancelCause::cancel: return "cancel()";
    case CancelCause::cancel_all: return "cancel_all()";
    case CancelCause::stop: return "the loop's stop";
    case CancelCause::deadline: return "a deadline";
    case CancelCause::stop_token: return "a stop token";
  }
  return "an unknown cause";
}
LoopStopped::LoopStopped(const std::string& what) : Error(errc::loop_stopped, what) {}
LoopStopped::LoopStopped(errc code, const std::string& what) : Error(code, what) {}
TaskAbandoned::TaskAbandoned(const std::string& what) : LoopStopped(errc::task_abandoned, what) {}
DeadlockError::DeadlockError(const std::string& what) : Error(errc::deadlock, what) {}
InvalidHandle::InvalidHandle(const std::string& what) : Error(errc::invalid_handle, what) {}
InvalidState::InvalidState(const std::string& what) : Error(errc::invalid_state, what) {}
InvalidArgument::InvalidArgument(const std::string& what) : Error(errc::invalid_argument, what) {}
Timeout::Timeout(const std::string& what) : Error(errc::timeout, what) {}
HostNotWaiting::HostNotWaiting(const std::string& what) : Error(errc::host_not_waiting, what) {}
QueueFull::QueueFull(const std::string& what) : Error(errc::queue_full, what) {}
BackendUnavailable::BackendUnavailable(const std::string& what) : Error(errc::backend_unavailable, what) {}

}  // namespace loopbridge

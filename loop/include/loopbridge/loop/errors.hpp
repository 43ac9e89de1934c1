#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

/// @file
/// The errors loopbridge reports, as exception types and as error codes.
///
/// Every error loopbridge raises is a loopbridge::Error (itself a std::system_error), and
/// its code() belongs to loopbridge::loop_category(). Catch by type to handle one case, or
/// compare the code: `e.code() == loopbridge::errc::loop_stopped`. what() is one message
/// saying what happened (and, where it helps, what to do instead); code().message() names
/// the kind of error alone. docs/errors.md lists when each one is raised.

namespace loopbridge {

/// The error codes of loopbridge::loop_category().
enum class errc {
  /// The task was cancelled before it finished (handle.cancel(), cancel_all() or stop()).
  task_cancelled = 1,
  /// The loop is stopped or stopping: the submission was refused and never ran.
  loop_stopped,
  /// The loop stopped while the task still ran and it did not unwind before the cancel
  /// deadline; its coroutine frame was destroyed on the loop thread without resuming.
  task_abandoned,
  /// A blocking call was made on a loop thread, where it would wait on itself.
  deadlock,
  /// The handle is empty (moved from, or its result was already taken).
  invalid_handle,
  /// The object is not in a state that allows the call (start twice, submit before start,
  /// hooks added after start, result() on a task that has not finished, ...).
  invalid_state,
  /// An argument is unusable (an empty callable, a negative duration, a bad thread name).
  invalid_argument,
  /// A lifecycle step or a blocking call ran past its deadline.
  timeout,
  /// call_host() found no host thread waiting on the task (none, or it stopped waiting).
  host_not_waiting,
  /// The loop's queue was at its capacity (LoopOptions::queue_capacity) and the submission
  /// was refused, at once or after waiting up to its deadline; it never ran.
  queue_full,
  /// The I/O backend loopbridge was built for (epoll or io_uring) cannot be used here: the
  /// kernel, or a seccomp policy, refuses it.
  backend_unavailable,
};

/// The category of loopbridge's error codes; its name() is "loopbridge".
const std::error_category& loop_category() noexcept;

/// Makes an error_code of loop_category().
std::error_code make_error_code(errc e) noexcept;

/// Base of every exception that loopbridge throws.
class Error : public std::system_error {
public:
  /// An error with `code` (of loop_category()) and the message `what`.
  Error(errc code, const std::string& what);

  /// The message given to the constructor, as it was given. (std::system_error would append
  /// `": " + code().message()`, saying the kind of error a second time.)
  const char* what() const noexcept override;

private:
  std::runtime_error message_;  // copied without allocating, as an exception must be
};

/// What cancelled a task (TaskCancelled::cause()).
enum class CancelCause {
  cancel,      ///< TaskHandle::cancel() or cancel_and_wait()
  cancel_all,  ///< LoopHandle::cancel_all() or LoopPool::cancel_all_and_wait()
  stop,        ///< the loop's stop (or the end of a failed start), in flight or still queued
  deadline,    ///< a deadline: run()'s, or a hook's (on_start, on_stop)
  stop_token,  ///< a stop request on the task's std::stop_token (SubmitOptions::stop, RunOptions::stop)
};

/// The cause's name as the messages use it: "cancel()", "cancel_all()", "the loop's stop",
/// "a deadline", "a stop token".
const char* to_string(CancelCause cause) noexcept;

/// A task was cancelled before it finished. Its value, if any, was discarded.
class TaskCancelled : public Error {
public:
  /// A cancellation by cancel(), with the message `what`.
  explicit TaskCancelled(const std::string& what = "the task was cancelled");
  /// A cancellation for `cause`, with the message `what`.
  TaskCancelled(CancelCause cause, const std::string& what);

  /// What cancelled the task.
  CancelCause cause() const noexcept { return cause_; }

private:
  CancelCause cause_;
};

/// The loop is stopped or stopping: the submission was refused and never ran.
class LoopStopped : public Error {
public:
  /// The error with the message `what`.
  explicit LoopStopped(const std::string& what = "the loop is stopped");

protected:
  /// For TaskAbandoned: a LoopStopped with another code.
  LoopStopped(errc code, const std::string& what);
};

/// The loop stopped while the task still ran and it did not unwind in time.
///
/// A LoopStopped, so that `catch (const LoopStopped&)` covers every task that a stop ended
/// without a result.
class TaskAbandoned : public LoopStopped {
public:
  /// The error with the message `what`.
  explicit TaskAbandoned(const std::string& what = "the task was abandoned at the loop's stop");
};

/// A blocking call was made on a loop thread, where it would wait on itself (or on a loop
/// that may be waiting on this one). Use `co_await handle.async_get()` there instead.
class DeadlockError : public Error {
public:
  /// The error with the message `what`.
  explicit DeadlockError(const std::string& what);
};

/// The handle is empty: moved from, or its result already taken.
class InvalidHandle : public Error {
public:
  /// The error with the message `what`.
  explicit InvalidHandle(const std::string& what);
};

/// The call is not allowed in the object's current state.
class InvalidState : public Error {
public:
  /// The error with the message `what`.
  explicit InvalidState(const std::string& what);
};

/// An argument is unusable.
class InvalidArgument : public Error {
public:
  /// The error with the message `what`.
  explicit InvalidArgument(const std::string& what);
};

/// A lifecycle step ran past its deadline.
class Timeout : public Error {
public:
  /// The error with the message `what`.
  explicit Timeout(const std::string& what);
};

/// call_host() found no host thread blocked in run() on the task, or that thread stopped
/// waiting (its deadline passed) before it ran the call.
class HostNotWaiting : public Error {
public:
  /// The error with the message `what`.
  explicit HostNotWaiting(const std::string& what);
};

/// The loop's queue was full: the submission was refused and never ran.
///
/// Raised by submit() and post() when LoopOptions::queue_capacity submissions are waiting
/// and the call's policy is QueueFullPolicy::fail, or its wait deadline passed.
class QueueFull : public Error {
public:
  /// The error with the message `what`.
  explicit QueueFull(const std::string& what);
};

/// The I/O backend loopbridge was built for cannot be used on this machine: typically
/// io_uring (a LOOPBRIDGE_IO_URING build) where the kernel or a container's seccomp policy
/// refuses io_uring_setup. Thrown by the BackgroundLoop constructor; the message carries the
/// system's reason.
class BackendUnavailable : public Error {
public:
  /// The error with the message `what`.
  explicit BackendUnavailable(const std::string& what);
};

}  // namespace loopbridge

/// @cond
// Lets a loopbridge::errc compare with, and convert to, a std::error_code. (Kept out of
// the API reference: Doxygen cannot place a specialisation declared outside namespace std.)
template <>
struct std::is_error_code_enum<loopbridge::errc> : std::true_type {};
/// @endcond

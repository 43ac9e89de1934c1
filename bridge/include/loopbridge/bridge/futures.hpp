#pragma once

#include <loopbridge/loop/task_handle.hpp>

#include <exception>
#include <future>
#include <type_traits>
#include <utility>

/// @file
/// Converts TaskHandles into std::future, which synchronous code already speaks
/// (boost::future: loopbridge/bridge/boost_future.hpp).

namespace loopbridge {

namespace detail {

/// How a promise takes an exception (specialised for boost::promise in boost_future.hpp).
template <class Promise>
struct PromiseError {
  static void set(Promise& promise, std::exception_ptr error) { promise.set_exception(std::move(error)); }
};

/// Fulfils `promise` with a settled handle's outcome.
template <class Promise, class T>
void fulfil(Promise& promise, TaskHandle<T>& settled) {
  try {
    if constexpr (std::is_void_v<T>) {
      settled.result();
      promise.set_value();
    } else {
      promise.set_value(settled.result());
    }
  } catch (...) {
    PromiseError<Promise>::set(promise, std::current_exception());
  }
}

}  // namespace detail

/// A std::future that settles with the task's outcome: the value, or the task's exception
/// (original type; TaskCancelled, LoopStopped, TaskAbandoned included).
/**
 * Consumes the handle (unless it throws: InvalidState while another wait is registered on
 * the task leaves the handle as it was): the std::future cannot cancel the task, so take a
 * cancel path first if you need one. The future is fulfilled on the thread that settles
 * the task. Unlike the handle's own waits, std::future::get() cannot detect a loop
 * thread: do not block on it there.
 *
 * @par Thread safety
 * As std::future.
 */
template <class T>
std::future<T> to_std_future(TaskHandle<T>&& handle) {
  std::promise<T> promise;
  std::future<T> future = promise.get_future();
  std::move(handle).on_settled(
      [promise = std::move(promise)](TaskHandle<T> settled) mutable { detail::fulfil(promise, settled); });
  return future;
}

}  // namespace loopbridge

#pragma once

#include <loopbridge/loop/task_handle.hpp>

#include <boost/thread/future.hpp>

#include <future>
#include <type_traits>
#include <utility>

/// @file
/// Converts TaskHandles into the futures that synchronous code already speaks.

namespace loopbridge {

namespace detail {

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
    if constexpr (requires { promise.set_exception(boost::exception_ptr()); }) {
      // boost::promise takes a std::exception_ptr as an exception *object*; wrapped, it
      // rethrows the original exception.
      promise.set_exception(boost::exception_ptr(std::current_exception()));
    } else {
      promise.set_exception(std::current_exception());
    }
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

/// A boost::future (Boost.Thread, BOOST_THREAD_VERSION 5: `.then()` continuations work)
/// that settles with the task's outcome, as to_std_future().
template <class T>
boost::future<T> to_boost_future(TaskHandle<T>&& handle) {
  boost::promise<T> promise;
  boost::future<T> future = promise.get_future();
  std::move(handle).on_settled(
      [promise = std::move(promise)](TaskHandle<T> settled) mutable { detail::fulfil(promise, settled); });
  return future;
}

}  // namespace loopbridge

#pragma once

#include <loopbridge/bridge/futures.hpp>
#include <loopbridge/loop/task_handle.hpp>

#include <boost/thread/future.hpp>

#include <exception>
#include <utility>

/// @file
/// Converts TaskHandles into boost::future, for code built on Boost.Thread's futures. In a
/// header of its own: Boost.Thread's future headers are large, and only this needs them.

namespace loopbridge {

namespace detail {

/// boost::promise takes a std::exception_ptr as an exception *object*; wrapped, it rethrows
/// the original exception.
template <class T>
struct PromiseError<boost::promise<T>> {
  static void set(boost::promise<T>& promise, std::exception_ptr error) {
    promise.set_exception(boost::exception_ptr(std::move(error)));
  }
};

}  // namespace detail

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

#pragma once

// Coroutine helpers for the tests.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>

namespace loopbridge::test {

/// Suspends the calling coroutine on a timer (cancellable like any Asio wait).
inline boost::asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, d);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

/// Waits on an hour-long timer; counts its start (when `started` is given), and a wait
/// that ended with operation_aborted (rethrown).
inline boost::asio::awaitable<int> sleep_an_hour(std::atomic<int>* aborted_waits, std::atomic<int>* started = nullptr) {
  if (started) ++*started;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, std::chrono::hours(1));
  try {
    co_await timer.async_wait(boost::asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    if (e.code() == boost::asio::error::operation_aborted) ++*aborted_waits;
    throw;
  }
  co_return 0;
}

}  // namespace loopbridge::test

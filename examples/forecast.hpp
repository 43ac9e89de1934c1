#pragma once

// A small library with async internals and a synchronous API, used by default_loop.cpp and
// tested by default_loop_test.cpp. Nobody hands it a loop: it runs its async code on the
// process-wide default loop, as Python libraries do with asyncio.get_event_loop().

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

namespace forecast {

/// The async internals: "asks a weather service" (a short timer) about `city`.
inline boost::asio::awaitable<std::string> fetch(std::string city) {
  if (city.empty()) throw std::invalid_argument("forecast: no city given");
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(2));
  co_await timer.async_wait(boost::asio::use_awaitable);
  co_return city + ": sunny";
}

/// The synchronous API: today's forecast for `city`, within two seconds.
/// Throws std::invalid_argument for an empty city, loopbridge::Timeout past the deadline.
inline std::string today(const std::string& city) {
  return loopbridge::run(loopbridge::default_loop(), [city] { return fetch(city); }, std::chrono::seconds(2));
}

/// Starts refreshing `city`'s forecast in the background every few milliseconds, until the
/// default loop stops. Returns the number of refreshes so far, shared with the refreshing
/// coroutine: it owns all it touches, so it may outlive the caller, even main(). Nothing
/// waits on it: its errors go to the default loop's error handler.
inline std::shared_ptr<const std::atomic<int>> watch(std::string city) {
  auto refreshes = std::make_shared<std::atomic<int>>(0);
  loopbridge::default_loop().post([city, refreshes]() -> boost::asio::awaitable<void> {
    for (;;) {
      co_await fetch(city);
      ++*refreshes;
      boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(5));
      co_await pause.async_wait(boost::asio::use_awaitable);
    }
  });
  return refreshes;
}

}  // namespace forecast

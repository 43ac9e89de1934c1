// The program at the top of README.md, as shown there, with the coroutine it declares.

//! [readme]
#include <loopbridge/loopbridge.hpp>

#include <iostream>

boost::asio::awaitable<int> fetch_answer();  // any Asio coroutine

int main() {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();                                    // returns once the loop takes work

  auto answer = loop.submit(fetch_answer);         // TaskHandle<int>
  if (answer.wait_for(std::chrono::seconds(5)) == std::future_status::ready)
    std::cout << answer.get() << "\n";             // value, or the task's own exception

  auto report = loop.stop();                       // cancels what is left, joins
  std::cout << report.summary() << "\n";
}                                                  // the destructor would have stopped too
//! [readme]

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

boost::asio::awaitable<int> fetch_answer() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(10));
  co_await timer.async_wait(boost::asio::use_awaitable);
  co_return 42;
}

// The first loop: start it, submit a coroutine and a callable, wait with a deadline, stop.

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>

using namespace std::chrono_literals;
namespace asio = boost::asio;

asio::awaitable<int> slow_answer() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 20ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return 42;
}

int main() {
  loopbridge::BackgroundLoop loop({.name = "quickstart"});
  loop.start();

  loopbridge::TaskHandle<int> answer = loop.submit(slow_answer);
  loopbridge::TaskHandle<std::string> where = loop.submit([] { return std::string("on the loop thread"); });
  if (answer.wait_for(5s) != std::future_status::ready) return 1;
  std::cout << "answer " << answer.get() << ", computed " << where.get() << "\n";

  auto forever = loop.submit([]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 10000s);
    co_await timer.async_wait(asio::use_awaitable);
  });
  loopbridge::ShutdownReport report = loop.stop();
  try {
    forever.get();
  } catch (const loopbridge::TaskCancelled&) {
    std::cout << "the 10000 s task was cancelled by stop\n";
  }
  std::cout << "shutdown: " << report.summary() << "\n";
  return 0;
}

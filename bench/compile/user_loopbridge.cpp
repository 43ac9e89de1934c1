// Compile-cost sample (b): a typical user file. A loop, a coroutine and a callable submitted
// with futures, a fire-and-forget call, a wait with a deadline, a stop.
#include <loopbridge/loopbridge.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<int> slow_answer() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return 42;
}

int main() {
  loopbridge::BackgroundLoop loop({.name = "typical"});
  loop.start();
  auto answer = loop.submit(slow_answer);
  auto text = loop.submit([] { return std::string("ok"); });
  loop.post([] {});
  if (answer.wait_for(5s) != std::future_status::ready) return 1;
  const int result = answer.get() + static_cast<int>(text.get().size());
  loop.stop();
  return result == 44 ? 0 : 1;
}

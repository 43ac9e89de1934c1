// Compile-cost sample (b), baseline: the same work as user_loopbridge.cpp written by hand on
// Asio (an io_context run by a thread, co_spawn with use_future, post with a promise).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<int> slow_answer() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return 42;
}

int main() {
  asio::io_context io(1);
  auto work = asio::make_work_guard(io);
  std::thread thread([&io] { io.run(); });
  auto answer = asio::co_spawn(io, slow_answer(), asio::use_future);
  std::promise<std::string> text_promise;
  auto text = text_promise.get_future();
  asio::post(io, [&text_promise] { text_promise.set_value("ok"); });
  asio::post(io, [] {});
  int result = 0;
  if (answer.wait_for(5s) == std::future_status::ready) {
    result = answer.get() + static_cast<int>(text.get().size());
  }
  work.reset();
  io.stop();
  thread.join();
  return result == 44 ? 0 : 1;
}

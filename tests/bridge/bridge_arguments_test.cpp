#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>

#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

asio::awaitable<std::string> joined(std::string a, std::string b) { co_return a + b; }

}  // namespace

TEST_CASE("run passes the arguments given after its time limit", "[bridge][run][arguments]") {
  BackgroundLoop loop({.name = "lb-run-args"});
  loop.start();
  CHECK(run(loop, [](int a, int b) { return a + b; }, 5s, 20, 22) == 42);
  CHECK(run(loop, joined, std::chrono::steady_clock::now() + 5s, std::string("a"), std::string("b")) == "ab");
  CHECK(run(loop, [](std::unique_ptr<int> p) { return *p; }, 5s, RunOptions{.name = "owned"},
            std::make_unique<int>(7)) == 7);
  CHECK(run(loop, [] { return 3; }, 5s, {.name = "braced"}) == 3);
}

TEST_CASE("to_thread passes the arguments, after a stop token when the function takes one",
          "[bridge][to_thread][arguments]") {
  BackgroundLoop loop({.name = "lb-offload-args"});
  loop.start();
  auto task = loop.submit([]() -> asio::awaitable<int> {
    auto sum_op = to_thread([](int a, int b) { return a + b; }, 20, 22);
    int sum = co_await std::move(sum_op);
#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
    auto stoppable_op = to_thread([](std::stop_token stop, int a) { return stop.stop_possible() ? a : -1; }, 1);
#else
    auto stoppable_op = to_thread([](int a) { return a; }, 1);
#endif
    int stoppable = co_await std::move(stoppable_op);
    auto moved_op =
        to_thread([](std::unique_ptr<int> p) { return *p; }, ToThreadOptions{.abandon_on_cancel = true},
                  std::make_unique<int>(100));
    int moved = co_await std::move(moved_op);
    co_return sum + stoppable + moved;
  });
  require_settles(task);
  CHECK(task.get() == 42 + 1 + 100);
}

TEST_CASE("call_host passes the arguments to the function on the host thread", "[bridge][call_host][arguments]") {
  BackgroundLoop loop({.name = "lb-host-args"});
  loop.start();
  const auto host = std::this_thread::get_id();
  bool on_host = run(
      loop,
      [host]() -> asio::awaitable<bool> {
        auto op = call_host([](std::thread::id expected, int a) { return a == 2 && std::this_thread::get_id() == expected; },
                            host, 2);
        co_return co_await std::move(op);
      },
      5s);
  CHECK(on_host);
}

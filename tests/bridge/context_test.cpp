#include <loopbridge/loop/context.hpp>

#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>

#include "support/deadline.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

struct RequestId {
  int value;
};
struct Span {
  std::string name;
};

int request_id_here() {
  const RequestId* id = context_value<RequestId>();
  return id ? id->value : -1;
}

}  // namespace

TEST_CASE("a context set on the host is visible inside the task across suspensions", "[bridge][context]") {
  BackgroundLoop loop({.name = "lb-context"});
  loop.start();
  ContextScope scope(ContextScope::with(RequestId{42}));
  auto task = loop.submit([]() -> asio::awaitable<int> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
    co_await timer.async_wait(asio::use_awaitable);
    Context context = co_await this_task_context();
    // current_context() agrees after a suspension too: each resumption restores it.
    if (request_id_here() != 42) co_return -2;
    co_return context.get<RequestId>() ? context.get<RequestId>()->value : -1;
  });
  require_settles(task);
  CHECK(task.get() == 42);
  auto callable = loop.submit([] { return request_id_here(); });
  require_settles(callable);
  CHECK(callable.get() == 42);
}

TEST_CASE("the task's context follows it into offloaded work and host callbacks", "[bridge][context]") {
  BackgroundLoop loop({.name = "lb-context-hop"});
  loop.start();
  ContextScope scope(Context().with(RequestId{7}).with(Span{"checkout"}));
  auto [on_worker, on_host] = run(
      loop,
      []() -> asio::awaitable<std::pair<int, int>> {
        auto offload = to_thread([] { return request_id_here(); });
        int worker = co_await std::move(offload);
        auto call = call_host([] {
          const Span* span = context_value<Span>();
          return span && span->name == "checkout" ? request_id_here() : -2;
        });
        int host = co_await std::move(call);
        co_return std::pair{worker, host};
      },
      5s);
  CHECK(on_worker == 7);
  CHECK(on_host == 7);
  // The host's own context is back once its callback returned.
  CHECK(request_id_here() == 7);
}

TEST_CASE("tasks without a context see none and contexts do not leak between tasks", "[bridge][context]") {
  BackgroundLoop loop({.name = "lb-context-none"});
  loop.start();
  auto bare = loop.submit([]() -> asio::awaitable<bool> { co_return (co_await this_task_context()).empty(); });
  require_settles(bare);
  CHECK(bare.get());
  {
    ContextScope scope(ContextScope::with(RequestId{1}));
    auto with = loop.submit([] { return request_id_here(); });
    require_settles(with);
    CHECK(with.get() == 1);
  }
  auto after = loop.submit([] { return request_id_here(); });
  require_settles(after);
  CHECK(after.get() == -1);
  CHECK(request_id_here() == -1);
}

TEST_CASE("a ContextScope inside a coroutine lasts across its co_awaits and then ends", "[bridge][context]") {
  BackgroundLoop loop({.name = "lb-ctx-scope"});
  loop.start();
  auto nap = []() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(2));
    co_await timer.async_wait(asio::use_awaitable);
  };
  auto task = loop.submit([&]() -> asio::awaitable<std::vector<int>> {
    std::vector<int> seen;
    {
      ContextScope scope(ContextScope::with(RequestId{7}));
      seen.push_back(request_id_here());
      co_await nap();
      seen.push_back(request_id_here());
      seen.push_back((co_await this_task_context()).get<RequestId>()->value);
      auto child = loop.submit([] { return request_id_here(); });
      seen.push_back(co_await child.async_get());
      seen.push_back(co_await to_thread([] { return request_id_here(); }));
    }
    seen.push_back(request_id_here());
    co_await nap();
    seen.push_back(request_id_here());
    co_return seen;
  });
  // Another task running meanwhile sees none of it.
  auto other = loop.submit([&]() -> asio::awaitable<int> {
    co_await nap();
    co_return request_id_here();
  });
  require_settles(task);
  CHECK(task.get() == std::vector<int>{7, 7, 7, 7, 7, -1, -1});
  require_settles(other);
  CHECK(other.get() == -1);
}

TEST_CASE("a ContextScope in a frame a stop destroys leaves the thread's context alone", "[bridge][context]") {
  for (const bool drop : {false, true}) {
    BackgroundLoop loop({.name = "lb-ctx-drop"});
    std::thread submitter([&] {
      REQUIRE(eventually([&] { return loop.state() == LoopState::running; }));
      ContextScope outer(ContextScope::with(RequestId{5}));
      auto task = loop.submit([]() -> asio::awaitable<void> {
        ContextScope inner(ContextScope::with(RequestId{9}));
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
        boost::system::error_code ignored;
        for (;;) {  // swallows the stop's cancel: abandoned, or dropped
          auto wait = timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
          co_await std::move(wait);
          timer.expires_after(std::chrono::hours(1));
        }
      });
      REQUIRE(eventually([&] { return loop.stats().running == 1; }));
      loop.request_stop({.cancel_timeout = std::chrono::milliseconds(20), .drop_in_flight = drop});
    });
    CHECK(request_id_here() == -1);
    loop.run_here();  // the frame is destroyed on this thread, after the stop
    submitter.join();
    CHECK(request_id_here() == -1);
  }
}

// Calls that break an entry point's rule, one per CASE_* macro. Each must fail to compile
// with the sentence that states the rule (tests/CMakeLists.txt lists the expected text).

#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/loop_pool.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <memory>

using namespace loopbridge;
using namespace std::chrono_literals;

namespace {

[[maybe_unused]] boost::asio::awaitable<int> coroutine() { co_return 1; }

struct NoDefault {
  explicit NoDefault(int) {}
};

[[maybe_unused]] int counter = 0;

}  // namespace

[[maybe_unused]] void misuse(BackgroundLoop& loop, LoopPool& pool) {
  (void)loop;
  (void)pool;
#if defined(CASE_submit_value)
  [[maybe_unused]] auto handle = loop.submit(42);
#elif defined(CASE_submit_missing_argument)
  [[maybe_unused]] auto handle = loop.submit([](int x) { return x; });
#elif defined(CASE_submit_wrong_argument)
  [[maybe_unused]] auto handle = loop.submit([](int x) { return x; }, "text");
#elif defined(CASE_post_returns_value)
  loop.post([] { return 1; });
#elif defined(CASE_post_value)
  loop.post(42);
#elif defined(CASE_awaitable_with_arguments)
  [[maybe_unused]] auto handle = loop.submit(coroutine(), 1);
#elif defined(CASE_returns_reference)
  [[maybe_unused]] auto handle = loop.submit([]() -> int& { return counter; });
#elif defined(CASE_not_storable)
  [[maybe_unused]] auto move_only = [p = std::make_unique<int>(1)] { return *p; };
  [[maybe_unused]] auto handle = loop.submit(move_only);
#elif defined(CASE_too_many_values)
  [[maybe_unused]] auto handle = loop.submit([](int, int, int, int, int, int, int) { return 0; }, 1, 2, 3, 4, 5, 6, 7);
#elif defined(CASE_pool_submit_value)
  [[maybe_unused]] auto handle = pool.submit(42);
#elif defined(CASE_run_value)
  [[maybe_unused]] int value = run(loop, 42, 1s);
#elif defined(CASE_run_bad_limit)
  [[maybe_unused]] int value = run(loop, [] { return 1; }, 5);
#elif defined(CASE_to_thread_coroutine)
  [[maybe_unused]] auto op = to_thread([] { return coroutine(); });
#elif defined(CASE_to_thread_missing_argument)
  [[maybe_unused]] auto op = to_thread([](int x) { return x; });
#elif defined(CASE_call_host_value)
  [[maybe_unused]] auto op = call_host(42);
#elif defined(CASE_on_settled_wrong_parameter)
  std::move(loop.submit([] { return 1; })).on_settled([](int) {});
#elif defined(CASE_async_get_no_default)
  [[maybe_unused]] auto handle = loop.submit([] { return NoDefault(1); });
  [[maybe_unused]] auto op = handle.async_get(boost::asio::use_future);
#endif
}

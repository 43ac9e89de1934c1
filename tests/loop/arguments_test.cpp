#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/loop_pool.hpp>

#include "support/deadline.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace loopbridge;
using namespace loopbridge::test;

namespace {

/// Counts its copies, to tell a decay-copy from a reference.
struct CopyCounter {
  explicit CopyCounter(std::atomic<int>& copies) : copies_(&copies) {}
  CopyCounter(const CopyCounter& other) : copies_(other.copies_) { copies_->fetch_add(1); }
  CopyCounter(CopyCounter&&) noexcept = default;
  CopyCounter& operator=(const CopyCounter&) = delete;
  CopyCounter& operator=(CopyCounter&&) = delete;
  ~CopyCounter() = default;

  std::atomic<int>* copies_;
};

asio::awaitable<std::string> repeat_later(std::string text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  co_return out;
}

/// Reads the task's own copy of its argument after a suspension point: the copy lives as
/// long as the task.
asio::awaitable<std::size_t> length_after_suspending(const std::string& text) {
  auto wait = repeat_later("", 0);
  co_await std::move(wait);
  co_return text.size();
}

}  // namespace

TEST_CASE("submit passes the arguments given after the callable", "[loop][submit][arguments]") {
  BackgroundLoop loop({.name = "lb-args"});
  loop.start();
  auto sum = loop.submit([](int a, int b) { return a + b; }, 20, 22);
  auto text = loop.submit(repeat_later, std::string("ab"), 3);
  require_settles(sum);
  require_settles(text);
  CHECK(sum.get() == 42);
  CHECK(text.get() == "ababab");
}

TEST_CASE("submit takes its options or a stop token before the arguments", "[loop][submit][arguments]") {
  BackgroundLoop loop({.name = "lb-args-opts"});
  loop.start();
  auto named = loop.submit([](int a) { return a * 2; }, SubmitOptions{.name = "double"}, 21);
  auto braced = loop.submit([] { return 5; }, {.name = "braced"});
  require_settles(named);
  require_settles(braced);
  CHECK(named.get() == 42);
  CHECK(braced.get() == 5);
#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
  std::stop_source stop;
  auto stoppable = loop.submit([](int a) { return a + 1; }, stop.get_token(), 41);
  require_settles(stoppable);
  CHECK(stoppable.get() == 42);
#endif
}

TEST_CASE("arguments are decay-copied as std::thread copies them, std::ref passes a reference",
          "[loop][submit][arguments]") {
  BackgroundLoop loop({.name = "lb-args-copy"});
  loop.start();
  std::atomic<int> copies{0};
  CopyCounter counter(copies);
  auto by_value = loop.submit([](const CopyCounter&) { return 1; }, counter);
  require_settles(by_value);
  CHECK(by_value.get() == 1);
  CHECK(copies.load() == 1);  // one copy into the task, none when calling

  int target = 0;
  auto by_reference = loop.submit([](int& out) { out = 7; }, std::ref(target));
  require_settles(by_reference);
  by_reference.get();
  CHECK(target == 7);
}

TEST_CASE("move-only arguments move into the task and into the call", "[loop][submit][arguments]") {
  BackgroundLoop loop({.name = "lb-args-move"});
  loop.start();
  auto owned = loop.submit([](std::unique_ptr<int> p) { return *p; }, std::make_unique<int>(42));
  require_settles(owned);
  CHECK(owned.get() == 42);
}

TEST_CASE("a coroutine's reference parameter refers to the task's copy, which outlives suspensions",
          "[loop][submit][arguments]") {
  BackgroundLoop loop({.name = "lb-args-coro"});
  loop.start();
  TaskHandle<std::size_t> length;
  {
    std::string temporary = "twelve chars";
    length = loop.submit(length_after_suspending, temporary);
  }
  require_settles(length);
  CHECK(length.get() == 12);
}

TEST_CASE("post passes the arguments given after the callable", "[loop][post][arguments]") {
  BackgroundLoop loop({.name = "lb-args-post"});
  loop.start();
  std::atomic<int> seen{0};
  loop.post([&seen](int a, int b) { seen.store(a + b); }, 40, 2);
  CHECK(eventually([&] { return seen.load() == 42; }));
  loop.post([&seen](int a) { seen.store(a); }, SubmitOptions{.name = "posted"}, 7);
  CHECK(eventually([&] { return seen.load() == 7; }));
}

TEST_CASE("pool submit and submit_keyed pass the arguments given after the callable", "[loop][pool][arguments]") {
  LoopPool pool({.loops = 2, .loop = {.name = "lb-args-pool"}});
  pool.start();
  auto round_robin = pool.submit([](int a, int b) { return a * b; }, 6, 7);
  auto keyed = pool.submit_keyed(std::string("user"), [](int a) { return a + 1; }, 41);
  require_settles(round_robin);
  require_settles(keyed);
  CHECK(round_robin.get() == 42);
  CHECK(keyed.get() == 42);
  std::atomic<int> seen{0};
  pool.post_keyed(1, [&seen](int a) { seen.store(a); }, 9);
  CHECK(eventually([&] { return seen.load() == 9; }));
  pool.stop();
}

TEST_CASE("get_executor is the loop's io_context executor", "[loop][executor]") {
  BackgroundLoop loop({.name = "lb-executor"});
  loop.start();
  std::atomic<bool> on_loop{false};
  asio::post(loop.get_executor(), [&] { on_loop.store(current_loop() == &loop); });
  CHECK(eventually([&] { return on_loop.load(); }));
  CHECK(loop.handle().get_executor() == loop.get_executor());
}

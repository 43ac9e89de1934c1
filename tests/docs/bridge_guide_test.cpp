// The code of docs/bridge.md and docs/threading.md, run. Each `//! [name]` region is shown in
// the guides as it is here (tests/docs/check_doc_snippets.cpp checks that).

#include <loopbridge/loopbridge.hpp>

#include "support/coro.hpp"
#include "support/deadline.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

boost::asio::awaitable<int> fetch_answer() {
  co_await loopbridge::test::sleep_for(1ms);
  co_return 42;
}

std::atomic<int> polls{0};

boost::asio::awaitable<void> poll_forever() {
  for (;;) {
    ++polls;
    co_await loopbridge::test::sleep_for(5ms);
  }
}

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
using Rows = std::vector<std::string>;

/// A blocking client library: each query takes the calling thread for a while, and gives
/// up early when asked to stop.
class LegacyDatabase {
public:
  Rows query(const std::string& sql, std::stop_token stop) {
    for (int step = 0; step < 3 && !stop.stop_requested(); ++step) std::this_thread::sleep_for(1ms);
    std::lock_guard lock(mutex_);
    threads_.push_back(std::this_thread::get_id());
    return {sql, "row 1", "row 2"};
  }
  std::vector<std::thread::id> threads() const {
    std::lock_guard lock(mutex_);
    return threads_;
  }

private:
  mutable std::mutex mutex_;
  std::vector<std::thread::id> threads_;
};
#endif

using Reply = std::string;

boost::asio::awaitable<std::string> fetch_remote() {
  co_await loopbridge::test::sleep_for(1ms);
  co_return "remote data";
}

/// A legacy object only the thread that made it may touch.
class Session {
public:
  Reply render(const std::string& data) const {
    if (std::this_thread::get_id() != owner_) throw std::logic_error("session used from a foreign thread");
    return "<p>" + data + "</p>";
  }

private:
  std::thread::id owner_ = std::this_thread::get_id();
};

struct RequestId {
  int value;
};

std::mutex log_mutex;
std::vector<int> logged_ids;

void log(const RequestId* id) {
  std::lock_guard lock(log_mutex);
  logged_ids.push_back(id ? id->value : -1);
}

}  // namespace

TEST_CASE("bridge guide: run blocks with a deadline and returns the value", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  //! [run]
  int answer = loopbridge::run(loop, fetch_answer, 2s);
  //! [run]
  CHECK(answer == 42);
}

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
TEST_CASE("bridge guide: a stop request on a jthread cancels its call", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  polls = 0;
  {
    //! [jthread]
    std::jthread poller([&](std::stop_token stop) {
      try {
        loopbridge::run(loop, poll_forever, 1h, {.stop = stop});
      } catch (const loopbridge::TaskCancelled&) {
        std::cout << "the poller was asked to stop\n";
      }
    });
    //! [jthread]
    REQUIRE(loopbridge::test::eventually([] { return polls > 0; }));  // the call is running
    poller.request_stop();
  }
  CHECK(loop.stop().cancelled == 1);
}
#endif

TEST_CASE("bridge guide: cancel_and_wait returns once the task has unwound", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  auto task = loop.submit(poll_forever);
  //! [cancel-and-wait]
  if (task.cancel_and_wait(1s) == std::future_status::timeout) {
    std::cerr << "the task is still unwinding after 1 s\n";
  }
  //! [cancel-and-wait]
  REQUIRE(task.ready());
  CHECK_THROWS_AS(task.get(), loopbridge::TaskCancelled);
}

#if LOOPBRIDGE_HAS_STOP_TOKEN  // std::stop_token (see loopbridge/loop/stop_token.hpp)
TEST_CASE("bridge guide: to_thread runs blocking work on the loop's workers", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  LegacyDatabase legacy_db;
  const std::string sql = "select 1";
  auto rows_task = loop.submit([&]() -> boost::asio::awaitable<Rows> {
    //! [to-thread]
    auto op = loopbridge::to_thread([&](std::stop_token stop) { return legacy_db.query(sql, stop); });
    Rows rows = co_await std::move(op);
    //! [to-thread]
    co_return rows;
  });
  loopbridge::test::require_settles(rows_task);
  CHECK(rows_task.get() == Rows{"select 1", "row 1", "row 2"});
  REQUIRE(legacy_db.threads().size() == 1);
  CHECK(legacy_db.threads().front() != std::this_thread::get_id());
}
#endif

TEST_CASE("bridge guide: call_host runs on the host thread that waits in run", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  Session session;  // made here: only this thread may use it
  //! [call-host]
  // Host thread (owns `session`):
  auto reply = loopbridge::run(loop, [&]() -> boost::asio::awaitable<Reply> {
    auto data = co_await fetch_remote();
    auto op = loopbridge::call_host([&] { return session.render(data); });  // runs on the host
    co_return co_await std::move(op);
  }, 5s);
  //! [call-host]
  CHECK(reply == "<p>remote data</p>");
}

TEST_CASE("bridge guide: the context follows the task across hops", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  logged_ids.clear();
  //! [context]
  loopbridge::ContextScope scope(loopbridge::ContextScope::with(RequestId{42}));
  auto task = loop.submit([]() -> boost::asio::awaitable<void> {
    loopbridge::Context context = co_await loopbridge::this_task_context();
    log(context.get<RequestId>());            // 42, after any number of suspensions
    auto op = loopbridge::to_thread([] { log(loopbridge::context_value<RequestId>()); });  // 42
    co_await std::move(op);
  });
  //! [context]
  loopbridge::test::require_settles(task);
  task.get();
  std::lock_guard lock(log_mutex);
  CHECK(logged_ids == std::vector<int>{42, 42});
}

TEST_CASE("bridge guide: the default loop starts on first use", "[docs]") {
  loopbridge::reset_default_loop();
  //! [default-loop]
  auto value = loopbridge::run(loopbridge::default_loop(), fetch_answer, 2s);
  //! [default-loop]
  CHECK(value == 42);
  CHECK(loopbridge::reset_default_loop().completed == 1);
}

TEST_CASE("threading guide: a coroutine waits for another loop's task without blocking", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loopbridge::BackgroundLoop other_loop({.name = "other"});
  loop.start();
  other_loop.start();
  auto other_loop_task = other_loop.submit(fetch_answer);
  auto waiting = loop.submit([&]() -> boost::asio::awaitable<int> {
    //! [async-get]
    int value = co_await other_loop_task.async_get();   // suspends the coroutine only
    //! [async-get]
    co_return value + 1;
  });
  loopbridge::test::require_settles(waiting);
  CHECK(waiting.get() == 43);
}

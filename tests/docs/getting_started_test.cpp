// The code of docs/getting-started.md, run. Each `//! [name]` region is shown in the guide
// as it is here (tests/docs/check_doc_snippets.cpp checks that).

#include <loopbridge/loopbridge.hpp>

#include "support/deadline.hpp"

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include <iostream>
#include <optional>

using namespace std::chrono_literals;

namespace {

/// A service the loop owns: a TCP listener on 127.0.0.1, opened and closed on the loop.
class Server {
public:
  boost::asio::awaitable<void> open() {
    const boost::asio::ip::tcp::endpoint any_port(boost::asio::ip::address_v4::loopback(), 0);
    auto executor = co_await boost::asio::this_coro::executor;
    acceptor_.emplace(executor, any_port);
  }
  boost::asio::awaitable<void> close() {
    acceptor_.reset();
    co_return;
  }
  bool is_open() const { return acceptor_ && acceptor_->is_open(); }

private:
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
};

}  // namespace

TEST_CASE("getting started: a first loop, a first submit, a first clean shutdown", "[docs]") {
  //! [first-loop]
  loopbridge::BackgroundLoop loop({.name = "io"});   // nothing runs yet
  loop.start();                                      // returns once the loop takes work
  //! [first-loop]

  //! [first-submit]
  loopbridge::TaskHandle<int> answer = loop.submit([]() -> boost::asio::awaitable<int> {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 10ms);
    co_await timer.async_wait(boost::asio::use_awaitable);
    co_return 42;
  });

  if (answer.wait_for(5s) == std::future_status::ready) {
    std::cout << "the answer: " << answer.get() << "\n";   // or the task's own exception
  }
  //! [first-submit]
  CHECK_FALSE(answer.valid());  // get() took the value

  //! [first-shutdown]
  loopbridge::ShutdownReport report = loop.stop();
  std::cout << report.summary() << "\n";
  //! [first-shutdown]
  CHECK(report.completed == 1);
  CHECK(report.joined);
  CHECK(loop.state() == loopbridge::LoopState::stopped);
}

TEST_CASE("getting started: hooks open and close a service the loop owns", "[docs]") {
  Server server;
  {
    //! [hooks]
    loopbridge::BackgroundLoop loop({.name = "service"});
    loop.on_start_stop(
        [&]() -> boost::asio::awaitable<void> { co_await server.open(); },
        [&]() -> boost::asio::awaitable<void> { co_await server.close(); });
    loop.start();   // returns once server.open() has finished
    //! [hooks]
    CHECK(server.is_open());
    loop.stop();
    CHECK_FALSE(server.is_open());
  }
}

TEST_CASE("getting started: stop cancels what is still running", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  //! [stop-cancels]
  auto forever = loop.submit([]() -> boost::asio::awaitable<void> {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 24h);
    co_await timer.async_wait(boost::asio::use_awaitable);
  });
  loop.stop();   // cancels the wait, returns once the task has unwound
  try {
    forever.get();
  } catch (const loopbridge::TaskCancelled&) {
    std::cout << "cancelled by stop\n";
  }
  //! [stop-cancels]
  CHECK(loop.stop().cancelled == 1);
}

TEST_CASE("getting started: a drain lets running work finish before the cancel", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "io"});
  loop.start();
  auto short_job = loop.submit([]() -> boost::asio::awaitable<int> {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 20ms);
    co_await timer.async_wait(boost::asio::use_awaitable);
    co_return 7;
  });
  //! [drain]
  loop.stop({.drain_timeout = 2s, .cancel_timeout = 1s});
  //! [drain]
  REQUIRE(short_job.ready());
  CHECK(short_job.get() == 7);
}

namespace {
boost::asio::awaitable<std::string> fetch_reply() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 1ms);
  co_await timer.async_wait(boost::asio::use_awaitable);
  co_return "ok";
}
}  // namespace

//! [unit-test]
TEST_CASE("the reply arrives before the deadline", "[client]") {
  loopbridge::BackgroundLoop loop({.name = "test-loop"});
  loop.start();
  auto reply = loop.submit(fetch_reply);
  REQUIRE(reply.wait_for(5s) == std::future_status::ready);   // never an unbounded wait
  CHECK(reply.get() == "ok");
}   // the destructor cancels anything still pending and joins the thread
//! [unit-test]

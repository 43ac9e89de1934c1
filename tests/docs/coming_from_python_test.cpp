// The scenarios of docs/coming-from-python.md, rewritten with loopbridge and run. Each
// `//! [name]` region is shown in the guide as it is here.

#include <loopbridge/loopbridge.hpp>

#include "support/deadline.hpp"

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <catch2/catch.hpp>

#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using boost::asio::ip::tcp;

namespace {

std::mutex printed_mutex;
std::vector<std::string> printed;

/// Python's print(), remembered so that the tests can check the order.
void print(const std::string& line) {
  std::cout << line << "\n";
  std::lock_guard lock(printed_mutex);
  printed.push_back(line);
}

//! [gather-work]
boost::asio::awaitable<void> work(std::string name, std::chrono::milliseconds duration) {
  print(name + ": started");
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, duration);
  co_await timer.async_wait(boost::asio::use_awaitable);
  print(name + ": finished");
}
//! [gather-work]

//! [pipeline]
/// Events published from any thread, handled in order by a consumer coroutine on the loop.
class EventPipeline {
public:
  explicit EventPipeline(loopbridge::LoopHandle loop) : loop_(loop), queue_(loop.get_executor(), 1024) {}

  /// Any thread (asyncio: loop.call_soon_threadsafe(queue.put_nowait, event)).
  void publish(std::string event) {
    loop_.post([this, event = std::move(event)] { queue_.try_send(boost::system::error_code(), event); });
  }

  /// The consumer, run on the loop until it is cancelled (asyncio: await queue.get()).
  boost::asio::awaitable<void> consume() {
    for (;;) {
      std::string event = co_await queue_.async_receive(boost::asio::use_awaitable);
      handled_.push_back(event);
    }
  }

  /// What the consumer handled so far; runs on the loop, where handled_ lives.
  std::vector<std::string> handled() {
    return loopbridge::run(loop_, [this] { return handled_; }, 1s);
  }

private:
  using Queue = boost::asio::experimental::channel<void(boost::system::error_code, std::string)>;
  loopbridge::LoopHandle loop_;
  Queue queue_;
  std::vector<std::string> handled_;  // touched on the loop thread only
};
//! [pipeline]

//! [third-party]
/// A third-party Asio service written against an executor (say, an SMTP receiver): it
/// greets each client and hangs up.
class GreetingServer {
public:
  explicit GreetingServer(boost::asio::any_io_executor executor)
      : acceptor_(executor, tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0)) {
    boost::asio::co_spawn(executor, accept_loop(), boost::asio::detached);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

private:
  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [error, client] = co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (error) co_return;  // closed
      static const std::string greeting = "220 ready\r\n";
      co_await boost::asio::async_write(client, boost::asio::buffer(greeting), boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }

  tcp::acceptor acceptor_;
};
//! [third-party]

/// A client: connects to `port` and reads the greeting line.
boost::asio::awaitable<std::string> read_greeting(unsigned short port) {
  tcp::socket socket(co_await boost::asio::this_coro::executor);
  const tcp::endpoint server(boost::asio::ip::address_v4::loopback(), port);
  co_await socket.async_connect(server, boost::asio::use_awaitable);
  std::string line;
  co_await boost::asio::async_read_until(socket, boost::asio::dynamic_buffer(line), "\r\n", boost::asio::use_awaitable);
  co_return line;
}

}  // namespace

TEST_CASE("coming from python: a synchronous program gathers three coroutines", "[docs]") {
  printed.clear();
  using namespace boost::asio::experimental::awaitable_operators;
  //! [gather]

  loopbridge::BackgroundLoop loop({.name = "work"});
  loop.start();
  loopbridge::run(loop, []() -> boost::asio::awaitable<void> {
    auto all = work("A", 20ms) && work("B", 10ms) && work("C", 30ms);   // asyncio.gather
    co_await std::move(all);
  }, 10s);
  //! [gather]
  CHECK(printed == std::vector<std::string>{"A: started", "B: started", "C: started", "B: finished", "A: finished",
                                            "C: finished"});
}

TEST_CASE("coming from python: the main thread owns the loop, classes share it, shutdown ends everything",
          "[docs]") {
  //! [pipeline-main]
  loopbridge::BackgroundLoop loop({.name = "events"});
  loop.start();

  EventPipeline pipeline(loop);   // the loop is handed to the classes that schedule on it
  auto consumer = loop.submit([&] { return pipeline.consume(); });
  for (int n = 0; n < 3; ++n) pipeline.publish("event " + std::to_string(n));

  // ... the program runs. At shutdown, what was published is still handled, then the consumer is
  // cancelled and the thread joined:
  loopbridge::ShutdownReport report = loop.stop({.drain_timeout = 100ms});
  //! [pipeline-main]
  CHECK(report.cancelled == 1);
  CHECK(report.joined);
  CHECK_THROWS_AS(consumer.get(), loopbridge::TaskCancelled);
}

TEST_CASE("coming from python: the pipeline's unit test finishes in milliseconds", "[docs]") {
  //! [pipeline-test]
  const auto started = std::chrono::steady_clock::now();
  loopbridge::BackgroundLoop loop({.name = "test-events"});
  loop.start();
  EventPipeline pipeline(loop);
  loop.post([&] { return pipeline.consume(); });

  pipeline.publish("hello");
  REQUIRE(loopbridge::test::eventually([&] { return pipeline.handled().size() == 1; }));
  CHECK(pipeline.handled().front() == "hello");

  loop.stop();   // the consumer still waits for events: it is cancelled
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  //! [pipeline-test]
}

TEST_CASE("coming from python: a third-party service opened and closed by the loop's hooks", "[docs]") {
  //! [hooks]
  loopbridge::BackgroundLoop loop({.name = "app"});
  std::optional<GreetingServer> server;   // made on the loop, served by the loop
  loop.on_start_stop(
      [&]() -> boost::asio::awaitable<void> {   // @app.before_serving
        server.emplace(loop.get_executor());
        co_return;
      },
      [&]() -> boost::asio::awaitable<void> {   // @app.after_serving
        server.reset();
        co_return;
      });
  loop.start();
  //! [hooks]
  const unsigned short port = server->port();
  CHECK(loopbridge::run(loop, [port] { return read_greeting(port); }, 5s) == "220 ready\r\n");
  loop.stop();
  CHECK_FALSE(server.has_value());
}

TEST_CASE("coming from python: a third party given a loop nobody runs never serves", "[docs]") {
  loopbridge::BackgroundLoop loop({.name = "app"});
  //! [second-loop]
  boost::asio::io_context other_context;                      // a second loop, by accident
  GreetingServer server(other_context.get_executor());
  loop.start();   // the app's loop runs; other_context never does, so nobody is greeted
  //! [second-loop]
  const unsigned short port = server.port();
  CHECK_THROWS_AS(loopbridge::run(loop, [port] { return read_greeting(port); }, 100ms), loopbridge::Timeout);
  loop.stop();
}

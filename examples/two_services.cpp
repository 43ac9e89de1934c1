// Two third-party services, one loop (docs/customise.md, "Several third parties, one loop").
//
// HelloHttp (Boost.Beast) and UpperLines (plain Asio coroutines) stand for libraries that
// know nothing of loopbridge: each takes an Asio executor. Both live on the same
// BackgroundLoop: each is created in an on_start hook, on the loop thread, from the loop's
// executor, and closed in the matching on_stop hook. Nothing else runs an io_context, so
// there is no second loop to keep in step, and stop() takes both down in order.
//
// Real clients then use them at the same time, while the host thread waits: curl for the
// HTTP service, a Python socket client for the line service. The host reads the services'
// counters through the loop, the only thread that touches them.

#include <loopbridge/loopbridge.hpp>

#include "common/processes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <string>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

using examples::this_thread_name;

// ---- Third party 1: an HTTP service written with Boost.Beast, callbacks, any executor ----

class HelloHttp : public std::enable_shared_from_this<HelloHttp> {
public:
  static std::shared_ptr<HelloHttp> open(asio::any_io_executor executor) {
    auto service = std::make_shared<HelloHttp>(std::move(executor));
    service->accept();
    return service;
  }

  explicit HelloHttp(asio::any_io_executor executor) : acceptor_(executor, {asio::ip::address_v4::loopback(), 0}) {}

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int requests() const { return requests_; }
  /// Stops accepting; a request in progress finishes (each connection serves one).
  void close() { acceptor_.close(); }

private:
  struct Exchange {
    explicit Exchange(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
  };

  void accept() {
    acceptor_.async_accept([self = shared_from_this()](boost::system::error_code error, tcp::socket socket) {
      if (error) return;  // closed
      self->serve(std::make_shared<Exchange>(std::move(socket)));
      self->accept();
    });
  }

  void serve(std::shared_ptr<Exchange> exchange) {
    http::async_read(exchange->socket, exchange->buffer, exchange->request,
                     [self = shared_from_this(), exchange](boost::system::error_code error, std::size_t) {
                       if (error) return;
                       ++self->requests_;
                       auto& response = exchange->response;
                       response = {http::status::ok, exchange->request.version()};
                       response.set(http::field::content_type, "text/plain");
                       response.body() = "hello from " + this_thread_name() + "\n";
                       response.keep_alive(false);
                       response.prepare_payload();
                       http::async_write(exchange->socket, response,
                                         [exchange](boost::system::error_code, std::size_t) {
                                           boost::system::error_code ignored;
                                           exchange->socket.shutdown(tcp::socket::shutdown_send, ignored);
                                         });
                     });
  }

  tcp::acceptor acceptor_;
  int requests_ = 0;
};

// ---- Third party 2: a line service (answers each line in upper case), coroutines ----

class UpperLines : public std::enable_shared_from_this<UpperLines> {
public:
  static std::shared_ptr<UpperLines> open(asio::any_io_executor executor) {
    auto service = std::make_shared<UpperLines>(executor);
    asio::co_spawn(executor, service->accept_connections(), asio::detached);
    return service;
  }

  explicit UpperLines(asio::any_io_executor executor) : acceptor_(executor, {asio::ip::address_v4::loopback(), 0}) {}

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int lines() const { return lines_; }
  /// Stops accepting and ends every open connection.
  void close() {
    acceptor_.close();
    for (auto& weak : connections_) {
      if (auto socket = weak.lock()) socket->close();
    }
  }

private:
  asio::awaitable<void> accept_connections() {
    auto self = shared_from_this();
    for (;;) {
      auto [error, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (error) co_return;
      auto connection = std::make_shared<tcp::socket>(std::move(socket));
      connections_.push_back(connection);
      asio::co_spawn(acceptor_.get_executor(), serve(connection), asio::detached);
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<tcp::socket> socket) {
    auto self = shared_from_this();
    std::string pending;
    for (;;) {
      auto [error, n] = co_await asio::async_read_until(*socket, asio::dynamic_buffer(pending), '\n',
                                                        asio::as_tuple(asio::use_awaitable));
      if (error) co_return;
      std::string line = pending.substr(0, n);
      pending.erase(0, n);
      std::transform(line.begin(), line.end(), line.begin(), [](unsigned char c) { return std::toupper(c); });
      ++lines_;
      auto [write_error, written] =
          co_await asio::async_write(*socket, asio::buffer(line), asio::as_tuple(asio::use_awaitable));
      if (write_error) co_return;
    }
  }

  tcp::acceptor acceptor_;
  std::vector<std::weak_ptr<tcp::socket>> connections_;
  int lines_ = 0;
};

// ---- The host side ----

using examples::run_client;

}  // namespace

int main() {
  // Both services live on the loop thread: made, used and dropped there. Declared before the
  // loop, so that they outlive the on_stop hooks that close them.
  std::shared_ptr<HelloHttp> web;
  std::shared_ptr<UpperLines> lines;
  loopbridge::BackgroundLoop loop({.name = "services"});
  loop.on_start_stop(
      [&]() -> asio::awaitable<void> {
        web = HelloHttp::open(loop.get_executor());
        co_return;
      },
      [&]() -> asio::awaitable<void> {
        web->close();
        web.reset();  // its pending handlers hold it until they have run, on this thread
        co_return;
      });
  loop.on_start_stop(
      [&]() -> asio::awaitable<void> {
        lines = UpperLines::open(loop.get_executor());
        co_return;
      },
      [&]() -> asio::awaitable<void> {
        lines->close();
        lines.reset();
        co_return;
      });
  loop.start();  // both are listening when it returns

  auto ports = loop.submit([&] { return std::pair{web->port(), lines->port()}; });
  auto [web_port, lines_port] = ports.get();
  std::cout << "HTTP on port " << web_port << ", lines on port " << lines_port << ", one loop thread\n";

  // Two real clients at once.
  auto curl = std::async(std::launch::async, [port = web_port] {
    return run_client("curl --silent --show-error --max-time 10 http://127.0.0.1:" + std::to_string(port) + "/");
  });
  auto python = std::async(std::launch::async, [port = lines_port] {
    return run_client(
        "/usr/bin/python3 -c 'import socket\n"
        "s = socket.create_connection((\"127.0.0.1\", " + std::to_string(port) + "), timeout=10)\n"
        "f = s.makefile(\"rw\")\n"
        "for line in [\"one loop\", \"two services\"]:\n"
        "    f.write(line + \"\\n\"); f.flush(); print(f.readline().strip())'");
  });
  const std::string web_reply = curl.get();
  const std::string lines_reply = python.get();
  std::cout << "curl:   " << web_reply << "python: " << lines_reply;

  auto counts = loop.submit([&] { return std::pair{web->requests(), lines->lines()}; });
  auto [requests, lines_served] = counts.get();
  std::cout << "served " << requests << " HTTP request(s) and " << lines_served << " line(s)\n";

  loopbridge::ShutdownReport report = loop.stop();  // on_stop hooks close both, in reverse
  std::cout << report.summary() << "\n";

  const bool ok = web_reply == "hello from services\n" && lines_reply == "ONE LOOP\nTWO SERVICES\n" &&
                  requests == 1 && lines_served == 2 && report.hook_errors.empty();
  if (!ok) std::cerr << "two_services: a client did not get the expected answer\n";
  return ok ? 0 : 1;
}

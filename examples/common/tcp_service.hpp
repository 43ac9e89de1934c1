#pragma once

// A TCP service that lives on a BackgroundLoop: open() runs in an on_start hook, close() in
// the matching on_stop hook (Quart's before_serving / after_serving around aiosmtpd). Every
// connection is a task of the loop, so close(), or the loop's own stop, cancels whatever a
// session is waiting on, and close() returns only once every session has unwound.

#include "common/scoped_count.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace examples {

/// Accepts TCP connections on a loop thread and runs one session coroutine per connection,
/// each as a task submitted to that loop.
/**
 * Declare it before the BackgroundLoop whose hooks open and close it, so that it outlives
 * the loop's stop, which runs close().
 *
 * @par Thread safety
 * open() and close() run on the loop thread (hooks). endpoint() may be read from any thread
 * once BackgroundLoop::start() has returned; the counters from any thread at any time.
 */
class TcpService {
public:
  /// Serves one connection. It owns the socket; when it returns the connection closes.
  using Session = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

  /// `name` names the service's tasks ("NAME accept", "NAME session") in stall reports and
  /// the loop's in-flight list.
  TcpService(std::string name, Session session, std::size_t max_connections = 64)
      : name_(std::move(name)), session_(std::move(session)), max_connections_(max_connections) {}

  TcpService(const TcpService&) = delete;
  TcpService& operator=(const TcpService&) = delete;

  /// Binds and listens on `where` (port 0: a free port, see endpoint()), then accepts in a
  /// task of `loop`, the loop this runs on. Throws boost::system::system_error when the
  /// address cannot be bound.
  boost::asio::awaitable<void> open(loopbridge::LoopHandle loop, boost::asio::ip::tcp::endpoint where) {
    loop_ = std::move(loop);
    acceptor_.emplace(loop_.get_executor(), where);
    endpoint_ = acceptor_->local_endpoint();
    accepting_ = loop_.submit([this] { return accept_connections(); }, task_options("accept"));
    co_return;
  }

  /// Stops accepting, cancels every session and waits until all of them have unwound.
  boost::asio::awaitable<void> close() {
    if (acceptor_) acceptor_->close();
    if (accepting_.valid()) accepting_.cancel();
    for (auto& session : sessions_) session.cancel();
    co_await settled(accepting_);
    for (auto& session : sessions_) co_await settled(session);
    for (auto& session : sessions_) report_failure(session);
    sessions_.clear();
    acceptor_.reset();
  }

  /// Where the service listens: the port the system chose when open() was given port 0.
  boost::asio::ip::tcp::endpoint endpoint() const { return endpoint_; }

  /// Sessions running now.
  std::size_t open_connections() const { return open_connections_.load(); }
  /// Sessions that ended with an exception other than a socket error or a cancel (printed).
  std::uint64_t failed() const { return failed_.load(); }

private:
  loopbridge::SubmitOptions task_options(std::string_view what) const {
    loopbridge::SubmitOptions options;
    options.name = name_ + " " + std::string(what);
    return options;
  }

  static boost::asio::awaitable<void> settled(loopbridge::TaskHandle<void>& task) {
    if (!task.valid()) co_return;
    auto wait = task.async_wait(boost::asio::use_awaitable);
    co_await std::move(wait);
  }

  // Sessions run as tasks whose handles only this service holds: an unexpected exception in
  // one would vanish with its handle, so it is printed and counted here.
  void report_failure(loopbridge::TaskHandle<void>& session) {
    try {
      session.result();
    } catch (const loopbridge::TaskCancelled&) {
    } catch (const loopbridge::LoopStopped&) {
    } catch (const std::exception& e) {
      ++failed_;
      std::cerr << "session failed: " << e.what() << "\n";
    }
  }

  boost::asio::awaitable<void> accept_connections() {
    namespace asio = boost::asio;
    for (;;) {
      auto accept = acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
      auto [error, socket] = co_await std::move(accept);
      if (error == asio::error::operation_aborted) co_return;
      if (error) {
        // Out of descriptors and the like: pause instead of spinning on the same error.
        asio::steady_timer pause(loop_.get_executor(), std::chrono::milliseconds(50));
        co_await pause.async_wait(asio::use_awaitable);
        continue;
      }
      std::erase_if(sessions_, [this](loopbridge::TaskHandle<void>& session) {
        if (!session.ready()) return false;
        report_failure(session);
        return true;
      });
      if (sessions_.size() >= max_connections_) continue;  // the socket closes as it goes out of scope
      sessions_.push_back(loop_.submit(
          [this, client = std::move(socket)]() mutable { return serve(std::move(client)); }, task_options("session")));
    }
  }

  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket) {
    ScopedCount counted(open_connections_);
    try {
      co_await session_(std::move(socket));
    } catch (const boost::system::system_error&) {
      // The peer went away, or the session was cancelled: either way the connection is over,
      // and neither is a fault of the service.
    }
  }

  loopbridge::LoopHandle loop_;
  std::string name_;
  Session session_;
  std::size_t max_connections_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  boost::asio::ip::tcp::endpoint endpoint_;
  loopbridge::TaskHandle<void> accepting_;
  std::vector<loopbridge::TaskHandle<void>> sessions_;
  std::atomic<std::size_t> open_connections_{0};
  std::atomic<std::uint64_t> failed_{0};
};

}  // namespace examples

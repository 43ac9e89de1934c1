#pragma once

// The legacy half of the server: one thread per connection, as a pre-async server does it,
// and a way to wind all of them down without cutting a request short.

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <sys/socket.h>
#include <thread>

namespace legacy {

/// Runs each accepted connection on a thread of its own.
/**
 * @par Thread safety
 * All members may be called from any thread.
 */
class ConnectionThreads {
public:
  using Serve = std::function<void(boost::asio::ip::tcp::socket&)>;

  explicit ConnectionThreads(std::size_t max_connections) : max_connections_(max_connections) {}
  ~ConnectionThreads() { join_all(); }
  ConnectionThreads(const ConnectionThreads&) = delete;
  ConnectionThreads& operator=(const ConnectionThreads&) = delete;

  /// Starts a thread that runs `serve(socket)`, then closes the socket. Returns false (and
  /// the socket closes) when max_connections threads are busy or stop_reading() was called.
  bool start(boost::asio::ip::tcp::socket socket, Serve serve) {
    std::lock_guard lock(mutex_);
    reap_finished();
    if (stopping_ || connections_.size() >= max_connections_) return false;
    Connection& connection = connections_.emplace_back(std::move(socket));
    connection.thread = std::thread([this, &connection, serve = std::move(serve)] {
      serve(connection.socket);
      std::lock_guard finish(mutex_);
      boost::system::error_code ignored;
      connection.socket.close(ignored);  // under the lock: stop_reading() never sees a reused descriptor
      connection.finished = true;
    });
    return true;
  }

  /// Shuts the read side of every open connection and refuses new ones. A thread waiting for
  /// its connection's next request sees the end of the stream; one in the middle of a request
  /// still writes its response, then finds the end of the stream.
  void stop_reading() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (Connection& connection : connections_) {
      if (!connection.finished) ::shutdown(connection.socket.native_handle(), SHUT_RD);
    }
  }

  /// Waits for every connection thread to end.
  void join_all() {
    std::list<Connection> joining;
    {
      std::lock_guard lock(mutex_);
      joining.splice(joining.end(), connections_);  // list nodes stay put: the threads' references hold
    }
    for (Connection& connection : joining) connection.thread.join();
  }

  /// Connections being served now.
  std::size_t active() const {
    std::lock_guard lock(mutex_);
    std::size_t active = 0;
    for (const Connection& connection : connections_) active += connection.finished ? 0 : 1;
    return active;
  }

private:
  struct Connection {
    explicit Connection(boost::asio::ip::tcp::socket s) : socket(std::move(s)) {}
    boost::asio::ip::tcp::socket socket;
    std::thread thread;
    bool finished = false;
  };

  // Under mutex_. A finished thread no longer needs the lock, so joining it here cannot wait
  // on us.
  void reap_finished() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (!it->finished) {
        ++it;
        continue;
      }
      it->thread.join();
      it = connections_.erase(it);
    }
  }

  const std::size_t max_connections_;
  mutable std::mutex mutex_;
  std::list<Connection> connections_;
  bool stopping_ = false;
};

}  // namespace legacy

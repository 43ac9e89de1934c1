#pragma once

// A stand-in for a third-party Asio component: it knows nothing of loopbridge, takes a plain
// io_context& and answers every connection with one line naming the thread that served it.

#include "support/deadline.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <pthread.h>

#include <memory>
#include <string>

namespace loopbridge::test {

/// The calling thread's name (/proc/self/task/*/comm).
inline std::string this_thread_name() {
  char name[16] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return name;
}

/// Listens on 127.0.0.1 (a free port) and writes "served by <thread name>\n" to each client.
class LineServer {
public:
  explicit LineServer(boost::asio::io_context& io)
      : acceptor_(io, {boost::asio::ip::address_v4::loopback(), 0}), port_(acceptor_.local_endpoint().port()) {
    accept();
  }

  unsigned short port() const { return port_; }

  /// Stops listening. Only on the thread that runs the io_context.
  void close() { acceptor_.close(); }

private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code error, boost::asio::ip::tcp::socket socket) {
      if (error) return;  // closed
      auto connection = std::make_shared<boost::asio::ip::tcp::socket>(std::move(socket));
      auto reply = std::make_shared<std::string>("served by " + this_thread_name() + "\n");
      boost::asio::async_write(*connection, boost::asio::buffer(*reply),
                               [connection, reply](boost::system::error_code, std::size_t) {});
      accept();
    });
  }

  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_;
};

/// Connects to 127.0.0.1:`port` and reads one line (without its newline), within the
/// deadline; empty if that failed.
inline std::string fetch_line(unsigned short port, std::chrono::milliseconds deadline = kDeadline) {
  boost::asio::io_context client;
  boost::asio::ip::tcp::socket socket(client);
  boost::asio::streambuf received;
  std::string line;
  socket.async_connect({boost::asio::ip::address_v4::loopback(), port}, [&](boost::system::error_code error) {
    if (error) return;
    boost::asio::async_read_until(socket, received, '\n', [&](boost::system::error_code read_error, std::size_t n) {
      if (read_error || n == 0) return;
      line.assign(boost::asio::buffers_begin(received.data()), boost::asio::buffers_begin(received.data()) + n - 1);
    });
  });
  client.run_for(deadline);
  return line;
}

}  // namespace loopbridge::test

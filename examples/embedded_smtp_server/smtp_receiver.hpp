#pragma once

// A small SMTP receiver that lives on a BackgroundLoop (aiosmtpd's Controller, minus its
// own thread): the loop's start hook opens it, its stop hook closes it, and the mailbox is
// read through the loop.

#include "common/tcp_service.hpp"
#include "embedded_smtp_server/smtp_session.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace smtp {

struct ReceiverOptions {
  /// Where to listen: loopback unless told otherwise; port 0 picks a free port.
  boost::asio::ip::tcp::endpoint listen{boost::asio::ip::address_v4::loopback(), 0};
  /// The name the server gives in its greeting and replies.
  std::string hostname = "mail.loopbridge.test";
  Limits limits{};
  /// A client silent for this long gets 421 and is disconnected.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
  std::size_t max_connections = 32;
};

/// An SMTP server that runs on a loop: open() it from the loop's start hook and close() it
/// (every session cancelled and unwound) from the matching stop hook.
/**
 * Declare it before the loop: the loop's stop runs close().
 *
 * @par Thread safety
 * open(), close() and take_messages() on the loop thread; take_messages() also on any
 * thread once the loop has stopped. endpoint() once the loop has started. The counters from
 * any thread.
 */
class SmtpReceiver {
public:
  explicit SmtpReceiver(ReceiverOptions options);

  /// Listens on ReceiverOptions::listen and serves each client in a task of `loop`, the loop
  /// this runs on. Throws boost::system::system_error when the address cannot be bound.
  boost::asio::awaitable<void> open(loopbridge::LoopHandle loop) { return service_.open(std::move(loop), options_.listen); }
  /// Stops accepting and ends every session.
  boost::asio::awaitable<void> close() { return service_.close(); }

  boost::asio::ip::tcp::endpoint endpoint() const { return service_.endpoint(); }

  /// The messages received since the last call, oldest first.
  std::vector<Message> take_messages() { return std::exchange(mailbox_, {}); }

  std::uint64_t delivered() const { return delivered_.load(); }
  std::size_t open_connections() const { return service_.open_connections(); }
  /// Sessions that ended with an unexpected exception (printed by the service).
  std::uint64_t failed_sessions() const { return service_.failed(); }

private:
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  ReceiverOptions options_;
  examples::TcpService service_;
  std::vector<Message> mailbox_;  // loop thread
  std::atomic<std::uint64_t> delivered_{0};
};

}  // namespace smtp

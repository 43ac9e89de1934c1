#include "embedded_smtp_server/smtp_receiver.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <optional>

namespace smtp {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Reads what the client sent, or nullopt when it sent nothing for `timeout`. Throws
// boost::system::system_error when the read fails (the client closed) or the session is
// cancelled.
asio::awaitable<std::optional<std::size_t>> read_some_within(tcp::socket& socket, asio::mutable_buffer buffer,
                                                             std::chrono::milliseconds timeout) {
  asio::steady_timer timer(socket.get_executor(), timeout);
  auto race = asio::experimental::make_parallel_group(socket.async_read_some(buffer, asio::deferred),
                                                      timer.async_wait(asio::deferred));
  auto [order, read_error, received, timer_error] =
      co_await race.async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  if (order[0] == 0) {
    if (read_error) throw boost::system::system_error(read_error);
    co_return received;
  }
  if (timer_error) throw boost::system::system_error(timer_error);  // cancelled
  co_return std::nullopt;
}

}  // namespace

SmtpReceiver::SmtpReceiver(ReceiverOptions options)
    : options_(std::move(options)),
      service_(
          "smtp", [this](tcp::socket socket) { return serve(std::move(socket)); }, options_.max_connections) {}

asio::awaitable<void> SmtpReceiver::serve(tcp::socket socket) {
  SmtpSession session(options_.hostname, options_.limits);
  LineSplitter lines(options_.limits.max_text_line);
  Reply reply;
  reply.text = session.greeting();
  std::array<char, 4096> received;
  for (;;) {
    if (reply.delivered) {
      mailbox_.push_back(std::move(*reply.delivered));
      ++delivered_;
    }
    if (!reply.text.empty()) co_await asio::async_write(socket, asio::buffer(reply.text), asio::use_awaitable);
    if (reply.close) break;
    if (auto line = lines.next()) {
      reply = line->too_long ? session.line_too_long() : session.feed_line(line->text);
      continue;
    }
    auto read = read_some_within(socket, asio::buffer(received), options_.idle_timeout);
    std::optional<std::size_t> count = co_await std::move(read);
    reply = count ? Reply() : session.idle_timeout();
    if (count) lines.append({received.data(), *count});
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace smtp

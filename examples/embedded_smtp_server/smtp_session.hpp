#pragma once

// The receiving side of SMTP (RFC 5321) as a state machine over lines, free of sockets and
// threads: the transport splits the byte stream with LineSplitter and hands each line to
// SmtpSession::feed_line(), which answers with the reply to send. A fuzzer can drive both
// directly.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtp {

/// Bounds on what one client may send.
struct Limits {
  /// A command line, CRLF included (RFC 5321 4.5.3.1.4).
  std::size_t max_command_line = 512;
  /// A line of message text, CRLF included (RFC 5321 4.5.3.1.6); also the longest line the
  /// transport keeps in memory.
  std::size_t max_text_line = 1000;
  /// Message data, after dot-unstuffing, CRLFs included.
  std::size_t max_message = 64 * 1024;
  std::size_t max_recipients = 100;
  /// Errors after which the session gives up on the client (421 and close).
  std::size_t max_errors = 20;
};

/// One received mail.
struct Message {
  std::string client;                   ///< the name given in HELO / EHLO
  std::string sender;                   ///< MAIL FROM's reverse path; empty for <>
  std::vector<std::string> recipients;  ///< RCPT TO's forward paths, in order
  std::string data;                     ///< the message, dot-stuffing removed, lines ending CRLF
};

/// What the session answers to one line.
struct Reply {
  std::string text;                  ///< reply lines, each ending CRLF; empty: send nothing
  bool close = false;                ///< close the connection once `text` is sent
  std::optional<Message> delivered;  ///< set when this line completed a message
};

/// One SMTP conversation, from the greeting to QUIT.
/**
 * Implements HELO, EHLO (advertising SIZE, 8BITMIME, ENHANCEDSTATUSCODES), MAIL FROM (with
 * SIZE= and BODY=), RCPT TO, DATA with dot-stuffing, RSET, NOOP, VRFY (252) and QUIT. Malformed
 * arguments get 501, commands out of order 503, unknown commands and over-long lines 500,
 * unknown MAIL parameters 555, too many recipients 452, and a message over
 * Limits::max_message 552 (at MAIL FROM when SIZE= announces it, otherwise once the data
 * ends). Commands are case-insensitive; lines are passed without their CRLF.
 *
 * @par Thread safety
 * None: one session belongs to one connection.
 */
class SmtpSession {
public:
  explicit SmtpSession(std::string hostname, Limits limits = {});

  /// The 220 line to send when the connection opens.
  std::string greeting() const;

  /// Handles one line (without its line terminator) and returns the reply.
  Reply feed_line(std::string_view line);

  /// Handles a line that the transport dropped because it was longer than
  /// Limits::max_text_line: 500 for a command; in message data, the message is refused once
  /// its data ends.
  Reply line_too_long();

  /// The 421 reply for a client that stayed silent too long.
  Reply idle_timeout() const;

  /// True while the client is sending message data (between 354 and the final ".").
  bool in_data() const { return state_ == State::data; }

private:
  enum class State { fresh, greeted, mail, rcpt, data };

  Reply command(std::string_view line);
  Reply hello(std::string_view verb, std::string_view argument);
  Reply mail(std::string_view argument);
  Reply rcpt(std::string_view argument);
  Reply data_line(std::string_view line);
  Reply error(std::string text);
  void reset_transaction();

  std::string hostname_;
  Limits limits_;
  State state_ = State::fresh;
  std::size_t errors_ = 0;
  Message message_;
  // While in data: the message grew past max_message, or had a line over max_text_line.
  bool too_big_ = false;
  bool had_long_line_ = false;
  std::size_t data_size_ = 0;
};

/// Splits a byte stream into lines ending in LF (a CR before it is dropped), keeping at most
/// `max_line` bytes of an unfinished line.
/**
 * A line longer than `max_line` (its terminator included) is skipped up to its LF and
 * reported as too long, so that the connection stays in step with the client.
 */
class LineSplitter {
public:
  explicit LineSplitter(std::size_t max_line) : max_line_(max_line) {}

  struct Line {
    std::string text;  ///< without the terminator; empty when too_long
    bool too_long = false;
  };

  /// Adds received bytes.
  void append(std::string_view bytes);
  /// The next complete line, or nullopt until more bytes arrive.
  std::optional<Line> next();

private:
  std::size_t max_line_;
  std::string buffer_;
  bool skipping_ = false;  // inside a line already known to be too long
};

}  // namespace smtp

#include "embedded_smtp_server/smtp_session.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace smtp {
namespace {

constexpr std::string_view kCrlf = "\r\n";

Reply say(std::string text) {
  Reply reply;
  reply.text = std::move(text);
  return reply;
}

Reply say_and_close(std::string text) {
  Reply reply = say(std::move(text));
  reply.close = true;
  return reply;
}

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return upper(x) == upper(y); });
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// Commands are 7-bit text (RFC 5321 2.4): printable ASCII and spaces.
bool printable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// "user@domain": one '@' with something on both sides, nothing that would need quoting.
bool valid_mailbox(std::string_view mailbox) {
  if (mailbox.empty() || mailbox.size() > 254) return false;
  if (mailbox.find_first_of(" <>,;:\"\\()[]") != std::string_view::npos) return false;
  auto at = mailbox.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < mailbox.size() &&
         mailbox.find('@', at + 1) == std::string_view::npos;
}

struct PathAndParameters {
  std::string_view path;
  std::string_view parameters;
};

// "<path> params": the path between angle brackets (an obsolete source route "@a,@b:" before
// the mailbox is dropped), then the parameters after a space.
std::optional<PathAndParameters> split_path(std::string_view text) {
  if (text.empty() || text.front() != '<') return std::nullopt;
  auto close = text.find('>');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view path = text.substr(1, close - 1);
  std::string_view rest = text.substr(close + 1);
  if (!rest.empty() && rest.front() != ' ') return std::nullopt;
  if (path.starts_with('@')) {
    auto colon = path.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    path.remove_prefix(colon + 1);
  }
  return PathAndParameters{path, trim(rest)};
}

}  // namespace

SmtpSession::SmtpSession(std::string hostname, Limits limits) : hostname_(std::move(hostname)), limits_(limits) {}

std::string SmtpSession::greeting() const { return "220 " + hostname_ + " ESMTP loopbridge example\r\n"; }

Reply SmtpSession::feed_line(std::string_view line) {
  return state_ == State::data ? data_line(line) : command(line);
}

Reply SmtpSession::line_too_long() {
  if (state_ == State::data) {
    had_long_line_ = true;
    return {};
  }
  return error("500 5.5.2 Line too long\r\n");
}

Reply SmtpSession::idle_timeout() const {
  return say_and_close("421 4.4.2 " + hostname_ + " Idle timeout, closing connection\r\n");
}

Reply SmtpSession::error(std::string text) {
  if (++errors_ >= limits_.max_errors) {
    return say_and_close("421 4.7.0 " + hostname_ + " Too many errors, closing connection\r\n");
  }
  return say(std::move(text));
}

void SmtpSession::reset_transaction() {
  message_.sender.clear();
  message_.recipients.clear();
  message_.data.clear();
  too_big_ = false;
  had_long_line_ = false;
  data_size_ = 0;
}

Reply SmtpSession::command(std::string_view line) {
  if (line.size() + kCrlf.size() > limits_.max_command_line) return error("500 5.5.2 Line too long\r\n");
  if (!printable(line)) return error("500 5.5.2 Error: bad characters in command\r\n");
  auto space = line.find(' ');
  std::string_view verb = line.substr(0, space);
  std::string_view argument = space == std::string_view::npos ? std::string_view() : trim(line.substr(space + 1));

  if (iequals(verb, "HELO") || iequals(verb, "EHLO")) return hello(verb, argument);
  if (iequals(verb, "MAIL")) return mail(argument);
  if (iequals(verb, "RCPT")) return rcpt(argument);
  if (iequals(verb, "DATA")) {
    if (!argument.empty()) return error("501 5.5.4 Syntax: DATA\r\n");
    if (state_ != State::rcpt) return error("503 5.5.1 Error: need RCPT command\r\n");
    state_ = State::data;
    return say("354 End data with <CR><LF>.<CR><LF>\r\n");
  }
  if (iequals(verb, "RSET")) {
    if (!argument.empty()) return error("501 5.5.4 Syntax: RSET\r\n");
    reset_transaction();
    if (state_ != State::fresh) state_ = State::greeted;
    return say("250 2.0.0 OK\r\n");
  }
  if (iequals(verb, "NOOP")) return say("250 2.0.0 OK\r\n");
  if (iequals(verb, "VRFY")) {
    if (argument.empty()) return error("501 5.5.4 Syntax: VRFY <address>\r\n");
    return say("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
  }
  if (iequals(verb, "QUIT")) {
    if (!argument.empty()) return error("501 5.5.4 Syntax: QUIT\r\n");
    return say_and_close("221 2.0.0 Bye\r\n");
  }
  if (verb.empty()) return error("500 5.5.2 Error: bad syntax\r\n");
  return error("500 5.5.2 Error: command not recognized\r\n");
}

Reply SmtpSession::hello(std::string_view verb, std::string_view argument) {
  const bool extended = iequals(verb, "EHLO");
  if (argument.empty() || argument.find(' ') != std::string_view::npos) {
    return error(extended ? "501 5.5.4 Syntax: EHLO hostname\r\n" : "501 5.5.4 Syntax: HELO hostname\r\n");
  }
  reset_transaction();
  message_.client = argument;
  state_ = State::greeted;
  if (!extended) return say("250 " + hostname_ + "\r\n");
  return say("250-" + hostname_ + "\r\n250-SIZE " + std::to_string(limits_.max_message) +
             "\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n");
}

Reply SmtpSession::mail(std::string_view argument) {
  if (state_ == State::fresh) return error("503 5.5.1 Error: send HELO first\r\n");
  if (state_ != State::greeted) return error("503 5.5.1 Error: nested MAIL command\r\n");
  if (!istarts_with(argument, "FROM:")) return error("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  auto path = split_path(trim(argument.substr(5)));
  if (!path || (!path->path.empty() && !valid_mailbox(path->path))) {
    return error("501 5.1.7 Bad sender address syntax\r\n");
  }
  std::string_view parameters = path->parameters;
  while (!parameters.empty()) {
    auto end = parameters.find(' ');
    std::string_view parameter = parameters.substr(0, end);
    parameters = end == std::string_view::npos ? std::string_view() : trim(parameters.substr(end));
    if (istarts_with(parameter, "SIZE=")) {
      std::string_view digits = parameter.substr(5);
      std::size_t size = 0;
      auto [last, failure] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
      if (digits.empty() || last != digits.data() + digits.size()) return error("501 5.5.4 Syntax: SIZE=<number>\r\n");
      if (failure != std::errc() || size > limits_.max_message) {
        return say("552 5.3.4 Message size exceeds fixed maximum message size\r\n");
      }
    } else if (istarts_with(parameter, "BODY=")) {
      std::string_view body = parameter.substr(5);
      if (!iequals(body, "7BIT") && !iequals(body, "8BITMIME")) return error("501 5.5.4 Syntax: BODY=7BIT|8BITMIME\r\n");
    } else {
      return error("555 5.5.4 MAIL FROM parameters not recognized or not implemented\r\n");
    }
  }
  message_.sender = path->path;
  state_ = State::mail;
  return say("250 2.1.0 OK\r\n");
}

Reply SmtpSession::rcpt(std::string_view argument) {
  if (state_ != State::mail && state_ != State::rcpt) return error("503 5.5.1 Error: need MAIL command\r\n");
  if (!istarts_with(argument, "TO:")) return error("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
  auto path = split_path(trim(argument.substr(3)));
  if (!path || !(valid_mailbox(path->path) || iequals(path->path, "postmaster"))) {
    return error("501 5.1.3 Bad recipient address syntax\r\n");
  }
  if (!path->parameters.empty()) return error("555 5.5.4 RCPT TO parameters not recognized or not implemented\r\n");
  if (message_.recipients.size() >= limits_.max_recipients) return say("452 4.5.3 Error: too many recipients\r\n");
  message_.recipients.emplace_back(path->path);
  state_ = State::rcpt;
  return say("250 2.1.5 OK\r\n");
}

Reply SmtpSession::data_line(std::string_view line) {
  if (line == ".") {
    Reply reply;
    if (too_big_) {
      reply.text = "552 5.3.4 Message size exceeds fixed maximum message size\r\n";
    } else if (had_long_line_) {
      reply.text = "500 5.5.2 Line too long\r\n";
    } else {
      reply.text = "250 2.0.0 OK: message accepted\r\n";
      reply.delivered = message_;
    }
    reset_transaction();
    state_ = State::greeted;
    return reply;
  }
  if (line.starts_with('.')) line.remove_prefix(1);  // dot-stuffing (RFC 5321 4.5.2)
  data_size_ += line.size() + kCrlf.size();
  if (too_big_ || had_long_line_) return {};
  if (data_size_ > limits_.max_message) {
    too_big_ = true;
    std::string().swap(message_.data);  // what would be refused need not be kept
    return {};
  }
  message_.data.append(line).append(kCrlf);
  return {};
}

void LineSplitter::append(std::string_view bytes) { buffer_.append(bytes); }

std::optional<LineSplitter::Line> LineSplitter::next() {
  auto newline = buffer_.find('\n');
  if (skipping_) {
    if (newline == std::string::npos) {
      buffer_.clear();
      return std::nullopt;
    }
    buffer_.erase(0, newline + 1);
    skipping_ = false;
    return Line{.text = {}, .too_long = true};
  }
  if (newline == std::string::npos) {
    // Without its terminator the line is already longer than the limit: skip the rest of it.
    if (buffer_.size() >= max_line_) {
      skipping_ = true;
      buffer_.clear();
    }
    return std::nullopt;
  }
  if (newline + 1 > max_line_) {
    buffer_.erase(0, newline + 1);
    return Line{.text = {}, .too_long = true};
  }
  std::size_t length = newline > 0 && buffer_[newline - 1] == '\r' ? newline - 1 : newline;
  Line line{.text = buffer_.substr(0, length), .too_long = false};
  buffer_.erase(0, newline + 1);
  return line;
}

}  // namespace smtp

// libFuzzer harness for the SMTP example's protocol code (examples/embedded_smtp_server):
// the input is what a client sends, cut into reads of a size the first byte chooses, split
// into lines by LineSplitter and answered by SmtpSession, exactly as the receiver's
// transport does. Checked after every line: each reply is well-formed SMTP, the bounds hold
// (line length, message size, recipients, errors before the session gives up), and a
// delivered message is what SMTP says it is. Small limits, so that fuzzing reaches them.

#include "embedded_smtp_server/smtp_session.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "smtp_fuzzer: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// Reply lines: "DDD text" or "DDD-text" (continued), each ending CRLF; codes 2xx to 5xx;
// every line of a multi-line reply carries the same code, and only the last uses a space.
void check_reply_text(std::string_view text) {
  if (text.empty()) return;
  if (!text.ends_with("\r\n")) fail("reply does not end with CRLF", text);
  std::string_view code;
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = text.find("\r\n", begin);
    std::string_view line = text.substr(begin, end - begin);
    if (line.size() < 4 || !std::isdigit(static_cast<unsigned char>(line[0])) || line[0] < '2' || line[0] > '5' ||
        !std::isdigit(static_cast<unsigned char>(line[1])) || !std::isdigit(static_cast<unsigned char>(line[2]))) {
      fail("malformed reply line", line);
    }
    if (!code.empty() && line.substr(0, 3) != code) fail("reply lines disagree on the code", text);
    code = line.substr(0, 3);
    const bool last = end + 2 == text.size();
    if (line[3] != (last ? ' ' : '-')) fail("bad reply continuation", text);
    for (char c : line) {
      if (c == '\r' || c == '\n') fail("bare CR or LF inside a reply line", text);
    }
    begin = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  smtp::Limits limits;
  limits.max_command_line = 128;
  limits.max_text_line = 100;
  limits.max_message = 300;
  limits.max_recipients = 3;
  limits.max_errors = 6;
  const std::size_t read_size = 1 + data[0] % 32;
  smtp::SmtpSession session("fuzz.example", limits);
  smtp::LineSplitter splitter(limits.max_text_line);
  check_reply_text(session.greeting());
  std::size_t errors = 0;

  for (std::size_t offset = 1; offset < size; offset += read_size) {
    splitter.append(std::string_view(reinterpret_cast<const char*>(data) + offset, std::min(read_size, size - offset)));
    while (auto line = splitter.next()) {
      if (line->too_long && !line->text.empty()) fail("a too-long line kept its text", line->text);
      if (line->text.find('\n') != std::string::npos) fail("a line kept its LF", line->text);
      if (line->text.size() >= limits.max_text_line) fail("a line longer than the limit got through", line->text);

      const bool was_in_data = session.in_data();
      smtp::Reply reply = line->too_long ? session.line_too_long() : session.feed_line(line->text);
      check_reply_text(reply.text);
      // Client errors: 5xx replies to commands, except a refused size (552), which the
      // client caused by its message, not by its conduct.
      if (!was_in_data && reply.text.starts_with("5") && !reply.text.starts_with("552")) ++errors;
      if (errors >= limits.max_errors && !reply.close) fail("max_errors client errors without closing", reply.text);
      if (reply.text.starts_with("354") && !session.in_data()) fail("354 sent but not in data", reply.text);
      if (!was_in_data && !reply.text.starts_with("354") && session.in_data()) fail("in data without a 354", reply.text);
      if (was_in_data && !line->too_long && line->text != "." && !reply.text.empty()) {
        fail("a line of message data got a reply", reply.text);
      }
      if (reply.delivered) {
        const smtp::Message& m = *reply.delivered;
        if (!reply.text.starts_with("250")) fail("delivered without a 250", reply.text);
        if (m.recipients.empty() || m.recipients.size() > limits.max_recipients) fail("bad recipient count", m.data);
        if (m.data.size() > limits.max_message) fail("message over max_message delivered", m.data);
        if (!m.data.empty() && !m.data.ends_with("\r\n")) fail("message data does not end with CRLF", m.data);
        if (m.client.empty()) fail("message from a client that never said HELO", m.data);
      }
      if (reply.close) {
        if (!reply.text.starts_with("221") && !reply.text.starts_with("421")) fail("closed without 221 or 421", reply.text);
        return 0;  // the transport closes the connection here
      }
    }
  }
  return 0;
}

// An async server embedded in a synchronous program: the plain main() below starts a
// BackgroundLoop whose start hook opens a small SMTP receiver and whose stop hook closes it
// (Quart's before_serving / after_serving around aiosmtpd), and reads what arrives by
// submitting a callable that empties the mailbox on the loop thread. No locks: the mailbox
// is only ever touched by the loop thread, and by main() once the loop has stopped.
//
// Usage: example_embedded_smtp_server [--listen ADDRESS] [--port N] [--idle-timeout-ms N]
//                                     [--max-message-bytes N]
// Prints "smtp listening on ADDRESS:PORT" once it serves (127.0.0.1 and a free port by
// default), then one "message {json}" line per mail received. SIGTERM or SIGINT stops it:
// the loop's stop hook closes the server, the shutdown report is printed, exit status 0.

#include "common/loop_stats.hpp"
#include "embedded_smtp_server/smtp_receiver.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/json.hpp>
#include <boost/json/src.hpp>  // Boost.JSON header-only: compiled into this file once

#include <charconv>
#include <csignal>
#include <ctime>
#include <iostream>
#include <optional>
#include <pthread.h>
#include <string_view>

using namespace std::chrono_literals;

namespace {

std::optional<smtp::ReceiverOptions> parse_options(int argc, char** argv) {
  smtp::ReceiverOptions options;
  if (argc % 2 == 0) return std::nullopt;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i], value = argv[i + 1];
    if (flag == "--listen") {
      boost::system::error_code error;
      options.listen.address(boost::asio::ip::make_address(value, error));
      if (error) return std::nullopt;
      continue;
    }
    std::size_t number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
    if (flag == "--port" && number <= 65535) {
      options.listen.port(static_cast<unsigned short>(number));
    } else if (flag == "--idle-timeout-ms" && number > 0) {
      options.idle_timeout = std::chrono::milliseconds(number);
    } else if (flag == "--max-message-bytes" && number > 0) {
      options.limits.max_message = number;
    } else {
      return std::nullopt;
    }
  }
  return options;
}

void print(const std::vector<smtp::Message>& messages) {
  for (const smtp::Message& message : messages) {
    boost::json::array recipients(message.recipients.begin(), message.recipients.end());
    boost::json::object line{{"client", message.client},
                             {"from", message.sender},
                             {"to", std::move(recipients)},
                             {"data", message.data}};
    std::cout << "message " << boost::json::serialize(line) << "\n";
  }
  std::cout.flush();
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options) {
    std::cerr << "usage: " << argv[0]
              << " [--listen ADDRESS] [--port N] [--idle-timeout-ms N] [--max-message-bytes N]\n";
    return 2;
  }

  // The loop thread inherits the mask: the signals wait for sigtimedwait() below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  smtp::SmtpReceiver receiver(*options);  // declared first: the loop's stop hook closes it
  loopbridge::BackgroundLoop loop({.name = "smtp"});
  loop.on_start_stop([&] { return receiver.open(loop.handle()); }, [&] { return receiver.close(); });
  try {
    loop.start();  // the start hook has opened the server when this returns
  } catch (const std::exception& e) {
    std::cerr << "cannot open the SMTP server on " << options->listen << ": " << e.what() << "\n";
    return 1;
  }
  std::cout << "smtp listening on " << receiver.endpoint() << std::endl;

  // The synchronous program's own loop: every 100 ms, fetch what arrived.
  int signal = 0;
  while (signal != SIGTERM && signal != SIGINT) {
    timespec tick{.tv_sec = 0, .tv_nsec = 100'000'000};
    signal = sigtimedwait(&stop_signals, nullptr, &tick);
    loopbridge::RunOptions take;
    take.name = "take mailbox";
    print(loopbridge::run(loop, [&receiver] { return receiver.take_messages(); }, 5s, std::move(take)));
  }

  std::cout << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << ": stopping; " << receiver.open_connections()
            << " connections open" << std::endl;
  loopbridge::ShutdownReport report = loop.stop();
  if (report.joined) print(receiver.take_messages());  // the loop thread is gone: its mailbox is ours
  std::cout << "received " << receiver.delivered() << " messages; " << receiver.open_connections()
            << " connections open after the stop hook\n";
  std::cout << "smtp loop: " << examples::describe(loop.stats()) << "\n";
  std::cout << "shutdown report: " << report.summary() << std::endl;
  const bool clean = report.joined && report.abandoned == 0 && report.hook_errors.empty() &&
                     receiver.open_connections() == 0 && receiver.failed_sessions() == 0;
  return clean ? 0 : 1;
}

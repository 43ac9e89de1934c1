// A legacy synchronous server calling async code: a thread-per-connection HTTP/1.1 server
// written with Boost.Beast's synchronous API (the Django of this story) whose handler fans
// out to three upstream services at once through a loop, under a deadline.
//
//   GET /dashboard?user=N[&delay_ms=M]  the three answers combined as JSON, or 504 when they
//                                       are not all in by the deadline
//   GET /dashboard/slow?user=N          the recommendations service takes 10 s: always 504,
//                                       and the calls still running are cancelled
//   GET /stats                          counters, among them the upstream calls in flight
//
// Usage: example_legacy_http_server [--port N] [--deadline-ms N] [--read-timeout-ms N]
// Prints "listening on http://127.0.0.1:PORT" once it serves (port 0, the default, picks a
// free one). A connection whose next request has not fully arrived within the read timeout
// (30 s by default) is closed, with 408 if part of one came: an idle or trickling client
// holds a connection thread no longer than that. SIGTERM or SIGINT: stop accepting, let every request in flight finish, stop the
// loops, print their shutdown reports; exit 0 when nothing was left behind.

#include "common/loop_stats.hpp"
#include "common/scoped_count.hpp"
#include "legacy_http_server/connection_threads.hpp"
#include "legacy_http_server/dashboard.hpp"
#include "legacy_http_server/upstreams.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <string_view>
#include <thread>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

boost::json::object loop_counters(const loopbridge::LoopStats& stats) {
  auto us = [](std::chrono::nanoseconds d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  return {{"submitted", stats.submitted},     {"completed", stats.completed},
          {"failed", stats.failed},           {"cancelled", stats.cancelled},
          {"rejected", stats.rejected},       {"in_flight", stats.in_flight},
          {"queue_depth", stats.queue_depth}, {"lag_p50_us", us(stats.lag_p50)},
          {"lag_p99_us", us(stats.lag_p99)},  {"longest_handler_us", us(stats.longest_handler)},
          {"stalls", stats.stalls},           {"errors_reported", stats.errors_reported}};
}

Response json_response(http::status status, const boost::json::value& body) {
  Response response(status, 11);
  response.set(http::field::content_type, "application/json");
  response.body() = boost::json::serialize(body) + "\n";
  return response;
}

// The synchronous application: each request runs on its connection's thread, and the
// dashboard route blocks that thread in loopbridge::run() while the loop does the fan-out.
class Application {
public:
  Application(loopbridge::LoopHandle loop, dashboard::DashboardClient& client, loopbridge::LoopHandle upstream_loop,
              const dashboard::UpstreamServices& upstreams, std::chrono::milliseconds deadline)
      : loop_(std::move(loop)),
        client_(client),
        upstream_loop_(std::move(upstream_loop)),
        upstreams_(upstreams),
        deadline_(deadline) {}

  Response handle(const Request& request) {
    ++received_;
    examples::ScopedCount in_flight(in_flight_);
    return respond(request);
  }

  std::uint64_t received() const { return received_.load(); }
  std::int64_t in_flight() const { return in_flight_.load(); }

private:
  Response respond(const Request& request) {
    using Kind = dashboard::Route::Kind;
    dashboard::Route route = dashboard::match_route(request.method(), request.target());
    switch (route.kind) {
      case Kind::dashboard: return fan_out(route);
      case Kind::stats: return json_response(http::status::ok, stats());
      case Kind::bad_request: return json_response(http::status::bad_request, {{"error", route.problem}});
      case Kind::method_not_allowed: {
        Response response = json_response(http::status::method_not_allowed, {{"error", "only GET is served"}});
        response.set(http::field::allow, "GET");
        return response;
      }
      case Kind::not_found: break;
    }
    return json_response(http::status::not_found, {{"error", "no such route"}});
  }

  Response fan_out(const dashboard::Route& route) {
    // Shared with the task: if a task ever outlived run() (it ignored its cancel past the
    // unwind timeout), it would still write into live memory.
    auto tally = std::make_shared<dashboard::FanOutTally>();
    try {
      loopbridge::RunOptions options;
      options.name = "dashboard user " + std::to_string(route.user);
      std::string combined = loopbridge::run(
          loop_, [this, route, tally] { return client_.fetch_dashboard(route, *tally); }, deadline_, std::move(options));
      Response response(http::status::ok, 11);
      response.set(http::field::content_type, "application/json");
      response.body() = std::move(combined) + "\n";
      return response;
    } catch (const loopbridge::Timeout&) {
      return json_response(http::status::gateway_timeout, {{"error", "the upstream services missed the deadline"},
                                                           {"deadline_ms", deadline_.count()},
                                                           {"upstream_calls", outcomes(*tally)}});
    } catch (const loopbridge::LoopStopped&) {
      return json_response(http::status::service_unavailable, {{"error", "shutting down"}});
    } catch (const std::exception& e) {  // an upstream failed: the other calls were cancelled
      return json_response(http::status::bad_gateway, {{"error", e.what()}, {"upstream_calls", outcomes(*tally)}});
    }
  }

  static boost::json::object outcomes(const dashboard::FanOutTally& tally) {
    boost::json::object outcomes;
    for (std::size_t i = 0; i < dashboard::kServiceCount; ++i) {
      outcomes[dashboard::kServices[i]] = dashboard::to_string(tally[i].load());
    }
    return outcomes;
  }

  boost::json::object stats() const {
    const dashboard::CallCounters& calls = client_.counters();
    return {{"requests_received", received()},
            {"requests_in_flight", in_flight()},
            {"upstream_calls",
             {{"started", calls.started.load()},
              {"answered", calls.answered.load()},
              {"failed", calls.failed.load()},
              {"cancelled", calls.cancelled.load()},
              {"in_flight", calls.in_flight.load()}}},
            {"upstream_services",
             {{"open_connections", upstreams_.open_connections()},
              {"answered", upstreams_.answered()},
              {"client_hung_up", upstreams_.client_hung_up()}}},
            {"loops", {{"fanout", loop_counters(loop_.stats())}, {"upstreams", loop_counters(upstream_loop_.stats())}}}};
  }

  loopbridge::LoopHandle loop_;
  dashboard::DashboardClient& client_;
  loopbridge::LoopHandle upstream_loop_;
  const dashboard::UpstreamServices& upstreams_;
  std::chrono::milliseconds deadline_;
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::int64_t> in_flight_{0};
};

using RequestParser = http::request_parser<http::string_body>;

// Reads one whole request into `parser`, or fails with timed_out once `timeout` has passed.
// Asio's blocking reads ignore SO_RCVTIMEO (they wait in poll() without a limit), so the
// socket reads non-blocking here and the wait is a poll() with what is left of the time.
void read_request(tcp::socket& socket, boost::beast::flat_buffer& buffer, RequestParser& parser,
                  std::chrono::milliseconds timeout, boost::system::error_code& error) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  socket.non_blocking(true, error);
  while (!error && !parser.is_done()) {
    http::read_some(socket, buffer, parser, error);
    if (error != asio::error::would_block) continue;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd readable{socket.native_handle(), POLLIN, 0};
    const int ready = left.count() > 0 ? ::poll(&readable, 1, static_cast<int>(left.count())) : 0;
    if (ready == 0) {
      error = asio::error::timed_out;
    } else if (ready < 0 && errno != EINTR) {
      error.assign(errno, boost::system::system_category());
    } else {
      error.clear();
    }
  }
  boost::system::error_code ignored;
  socket.non_blocking(false, ignored);  // writes block as before
}

// Sends a last response with "Connection: close".
void send_final(tcp::socket& socket, http::status status, const boost::json::value& body) {
  Response response = json_response(status, body);
  response.keep_alive(false);
  response.prepare_payload();
  boost::system::error_code ignored;
  http::write(socket, response, ignored);
}

// Reads requests off one keep-alive connection until the client closes it, the server shuts
// its read side, a request is malformed (answered 400, then closed) or does not arrive within
// `read_timeout` (closed; answered 408 first if part of it came).
void serve_connection(tcp::socket& socket, Application& app, const std::atomic<bool>& stopping,
                      std::chrono::milliseconds read_timeout) {
  boost::beast::flat_buffer buffer;
  boost::system::error_code error;
  for (;;) {
    RequestParser parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(64 * 1024);
    read_request(socket, buffer, parser, read_timeout, error);
    if (error == http::error::end_of_stream) break;
    if (error == asio::error::timed_out) {
      if (parser.got_some() || buffer.size() > 0) {
        send_final(socket, http::status::request_timeout, {{"error", "the request did not arrive in time"}});
      }
      break;
    }
    if (error) {
      const bool malformed = error.category() == http::make_error_code(http::error::bad_target).category();
      if (malformed) send_final(socket, http::status::bad_request, {{"error", error.message()}});
      break;
    }
    Response response = app.handle(parser.get());
    response.keep_alive(parser.get().keep_alive() && !stopping.load());
    response.prepare_payload();
    http::write(socket, response, error);
    if (error || !response.keep_alive()) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, error);
}

struct Options {
  unsigned short port = 0;
  std::chrono::milliseconds deadline{1000};
  std::chrono::milliseconds read_timeout{30000};
};

std::optional<Options> parse_options(int argc, char** argv) {
  Options options;
  if (argc % 2 == 0) return std::nullopt;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i], value = argv[i + 1];
    unsigned number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
    if (flag == "--port" && number <= 65535) {
      options.port = static_cast<unsigned short>(number);
    } else if (flag == "--deadline-ms" && number > 0) {
      options.deadline = std::chrono::milliseconds(number);
    } else if (flag == "--read-timeout-ms" && number > 0 && number <= 3600 * 1000) {
      options.read_timeout = std::chrono::milliseconds(number);
    } else {
      return std::nullopt;
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options) {
    std::cerr << "usage: " << argv[0] << " [--port N] [--deadline-ms N] [--read-timeout-ms N]\n";
    return 2;
  }

  // Every thread started from here on inherits the mask: only sigwait() below sees SIGTERM.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  dashboard::UpstreamServices upstreams;  // declared first: the loop's stop hooks close it
  loopbridge::BackgroundLoop upstream_loop({.name = "upstreams"});
  upstreams.serve_on(upstream_loop);
  upstream_loop.start();

  loopbridge::BackgroundLoop app_loop({.name = "fanout"});
  app_loop.start();
  dashboard::DashboardClient client(upstreams.endpoints());
  Application app(app_loop.handle(), client, upstream_loop.handle(), upstreams, options->deadline);

  asio::io_context sync_io;  // never run: the synchronous sockets only need it to exist
  std::optional<tcp::acceptor> acceptor;
  try {
    acceptor.emplace(sync_io, tcp::endpoint(asio::ip::address_v4::loopback(), options->port));
  } catch (const boost::system::system_error& e) {
    std::cerr << "cannot listen on port " << options->port << ": " << e.what() << "\n";
    return 1;
  }
  const tcp::endpoint listening = acceptor->local_endpoint();
  std::atomic<bool> stopping{false};
  legacy::ConnectionThreads connections(64);
  std::thread acceptor_thread([&] {
    for (;;) {
      tcp::socket socket(sync_io);
      boost::system::error_code error;
      acceptor->accept(socket, error);
      if (stopping.load()) return;
      if (error) {
        std::this_thread::sleep_for(50ms);  // out of descriptors and the like: do not spin
        continue;
      }
      connections.start(std::move(socket),
                        [&](tcp::socket& connection) {
                          serve_connection(connection, app, stopping, options->read_timeout);
                        });
    }
  });

  auto endpoints = upstreams.endpoints();
  std::cout << "upstreams: ";
  for (std::size_t i = 0; i < dashboard::kServiceCount; ++i) {
    std::cout << dashboard::kServices[i] << " " << endpoints[i] << (i + 1 < dashboard::kServiceCount ? ", " : "\n");
  }
  std::cout << "deadline: " << options->deadline.count() << " ms, read timeout: " << options->read_timeout.count()
            << " ms\n";
  std::cout << "listening on http://" << listening << std::endl;

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::cout << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << ": stopping; requests in flight: " << app.in_flight()
            << ", connections open: " << connections.active() << std::endl;

  // Stop accepting: the acceptor thread is blocked in accept(), so wake it with one last
  // connection of our own.
  stopping = true;
  {
    tcp::socket wake(sync_io);
    boost::system::error_code ignored;
    wake.connect(listening, ignored);
    acceptor_thread.join();
  }
  connections.stop_reading();
  connections.join_all();
  std::cout << "every request settled: " << app.received() << " received, " << app.in_flight() << " in flight"
            << std::endl;

  loopbridge::ShutdownReport app_report = app_loop.stop();
  loopbridge::ShutdownReport upstream_report = upstream_loop.stop();
  const dashboard::CallCounters& calls = client.counters();
  std::cout << "upstream calls: " << calls.started << " started, " << calls.answered << " answered, " << calls.failed
            << " failed, " << calls.cancelled << " cancelled, " << calls.in_flight << " in flight\n";
  std::cout << "upstream services: " << upstreams.answered() << " answered, " << upstreams.client_hung_up()
            << " dropped after the client hung up, " << upstreams.open_connections() << " connections open\n";
  std::cout << "fanout loop: " << examples::describe(app_loop.stats()) << "\n";
  std::cout << "upstreams loop: " << examples::describe(upstream_loop.stats()) << "\n";
  std::cout << "shutdown report (fanout loop): " << app_report.summary() << "\n";
  std::cout << "shutdown report (upstreams loop): " << upstream_report.summary() << std::endl;

  const bool clean = app.in_flight() == 0 && calls.in_flight == 0 && upstreams.open_connections() == 0 &&
                     app_report.joined && upstream_report.joined && app_report.abandoned == 0 &&
                     upstream_report.abandoned == 0 && upstream_report.hook_errors.empty();
  return clean ? 0 : 1;
}

#pragma once

// The async half of the dashboard: three upstream HTTP services (async Beast servers on a
// loop of their own, standing in for remote services), and the client that fans out to them
// from the application's loop.

#include "common/tcp_service.hpp"
#include "legacy_http_server/dashboard.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace dashboard {

/// The three upstream services, each a TcpService on 127.0.0.1 with a free port.
/**
 * Each service answers one GET per connection after the delay the request asks for, unless
 * the client hangs up first (its deadline passed): then it stops waiting and drops the
 * request, as a careful server does.
 *
 * @par Thread safety
 * serve_on() before the loop starts, endpoints() after; the counters from any thread.
 */
class UpstreamServices {
public:
  UpstreamServices();

  /// Has `loop`'s start hooks open the services and its stop hooks close them. The loop must
  /// stop before this object is destroyed: declare this object first.
  void serve_on(loopbridge::BackgroundLoop& loop);

  std::array<boost::asio::ip::tcp::endpoint, kServiceCount> endpoints() const;
  /// Upstream connections being served now, over all three services.
  std::size_t open_connections() const;
  std::uint64_t answered() const { return answered_.load(); }
  /// Requests dropped because the client hung up before the answer was due.
  std::uint64_t client_hung_up() const { return client_hung_up_.load(); }

private:
  boost::asio::awaitable<void> serve(std::string_view service, boost::asio::ip::tcp::socket socket);

  std::array<std::unique_ptr<examples::TcpService>, kServiceCount> services_;
  std::atomic<std::uint64_t> answered_{0};
  std::atomic<std::uint64_t> client_hung_up_{0};
};

/// How one upstream call of a request ended.
enum class CallOutcome { pending, answered, failed, cancelled };

std::string_view to_string(CallOutcome outcome);

/// The outcomes of one dashboard request's calls, in kServices order. Written on the loop
/// thread, read by the host once run() has returned.
using FanOutTally = std::array<std::atomic<CallOutcome>, kServiceCount>;

/// Upstream calls over all requests.
struct CallCounters {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> cancelled{0};
  /// Calls whose coroutine has not finished yet: zero at rest, or calls leaked.
  std::atomic<std::int64_t> in_flight{0};
};

/// An upstream answered with a status other than 200.
class UpstreamError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Fans a dashboard request out to the three services at once and combines the answers.
/**
 * @par Thread safety
 * fetch_dashboard() runs on the loop thread (submit it); the counters from any thread.
 */
class DashboardClient {
public:
  explicit DashboardClient(std::array<boost::asio::ip::tcp::endpoint, kServiceCount> upstreams)
      : upstreams_(upstreams) {}

  /// Calls the three services concurrently and returns the combined JSON document. When one
  /// call fails the others are cancelled and the failure is rethrown (UpstreamError,
  /// BadUpstreamAnswer, or the socket's boost::system::system_error); cancelling the task
  /// cancels every call.
  boost::asio::awaitable<std::string> fetch_dashboard(Route route, FanOutTally& tally);

  const CallCounters& counters() const { return counters_; }

private:
  boost::asio::awaitable<std::string> call(std::size_t service, UpstreamQuery query, std::atomic<CallOutcome>& outcome);

  std::array<boost::asio::ip::tcp::endpoint, kServiceCount> upstreams_;
  CallCounters counters_;
};

}  // namespace dashboard

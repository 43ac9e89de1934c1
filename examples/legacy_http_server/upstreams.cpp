#include "legacy_http_server/upstreams.hpp"

#include "common/scoped_count.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace dashboard {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

UpstreamServices::UpstreamServices() {
  for (std::size_t i = 0; i < kServiceCount; ++i) {
    std::string_view name = kServices[i];
    services_[i] = std::make_unique<examples::TcpService>(
        std::string(name), [this, name](tcp::socket socket) { return serve(name, std::move(socket)); });
  }
}

void UpstreamServices::serve_on(loopbridge::BackgroundLoop& loop) {
  for (auto& service : services_) {
    loop.on_start_stop(
        [&service, handle = loop.handle()] { return service->open(handle, {asio::ip::address_v4::loopback(), 0}); },
        [&service] { return service->close(); });
  }
}

std::array<tcp::endpoint, kServiceCount> UpstreamServices::endpoints() const {
  std::array<tcp::endpoint, kServiceCount> endpoints;
  for (std::size_t i = 0; i < kServiceCount; ++i) endpoints[i] = services_[i]->endpoint();
  return endpoints;
}

std::size_t UpstreamServices::open_connections() const {
  std::size_t open = 0;
  for (const auto& service : services_) open += service->open_connections();
  return open;
}

asio::awaitable<void> UpstreamServices::serve(std::string_view service, tcp::socket socket) {
  boost::beast::flat_buffer buffer;
  http::request<http::empty_body> request;
  co_await http::async_read(socket, buffer, request, asio::use_awaitable);

  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(false);
  auto query = parse_upstream_target(request.target());
  if (!query) {
    response.result(http::status::bad_request);
  } else {
    if (query->delay.count() > 0) {
      // Wait out the delay, unless the client hangs up first (its own deadline passed): then
      // no one is left to answer. A cancel of this session ends both waits.
      asio::steady_timer delay(socket.get_executor(), query->delay);
      auto race = asio::experimental::make_parallel_group(delay.async_wait(asio::deferred),
                                                          socket.async_wait(tcp::socket::wait_read, asio::deferred));
      auto [order, delay_error, hang_up_error] =
          co_await race.async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
      if (order[0] == 1 && !hang_up_error) ++client_hung_up_;
      if (order[0] == 1 || delay_error) co_return;
    }
    response.result(http::status::ok);
    response.set(http::field::content_type, "application/json");
    response.body() = service_answer(service, query->user);
  }
  response.prepare_payload();
  co_await http::async_write(socket, response, asio::use_awaitable);
  if (response.result() == http::status::ok) ++answered_;
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

std::string_view to_string(CallOutcome outcome) {
  switch (outcome) {
    case CallOutcome::pending: return "pending";
    case CallOutcome::answered: return "answered";
    case CallOutcome::failed: return "failed";
    case CallOutcome::cancelled: return "cancelled";
  }
  return "unknown";
}

namespace {

asio::awaitable<std::string> http_get(tcp::endpoint where, std::string target) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(where, asio::use_awaitable);
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, where.address().to_string());
  request.keep_alive(false);
  co_await http::async_write(socket, request, asio::use_awaitable);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(socket, buffer, response, asio::use_awaitable);
  if (response.result() != http::status::ok) {
    throw UpstreamError(target + " answered " + std::to_string(response.result_int()));
  }
  co_return std::move(response.body());
}

}  // namespace

asio::awaitable<std::string> DashboardClient::call(std::size_t service, UpstreamQuery query,
                                                   std::atomic<CallOutcome>& outcome) {
  ++counters_.started;
  examples::ScopedCount in_flight(counters_.in_flight);
  try {
    auto get = http_get(upstreams_[service], upstream_target(kServices[service], query));
    std::string answer = co_await std::move(get);
    outcome = CallOutcome::answered;
    ++counters_.answered;
    co_return answer;
  } catch (const boost::system::system_error& e) {
    const bool cancelled = e.code() == asio::error::operation_aborted;
    outcome = cancelled ? CallOutcome::cancelled : CallOutcome::failed;
    ++(cancelled ? counters_.cancelled : counters_.failed);
    throw;
  } catch (...) {
    outcome = CallOutcome::failed;
    ++counters_.failed;
    throw;
  }
}

asio::awaitable<std::string> DashboardClient::fetch_dashboard(Route route, FanOutTally& tally) {
  for (auto& outcome : tally) outcome = CallOutcome::pending;
  auto executor = co_await asio::this_coro::executor;
  auto fan_out = asio::experimental::make_parallel_group(
      asio::co_spawn(executor, call(0, {route.user, route.upstream_delay[0]}, tally[0]), asio::deferred),
      asio::co_spawn(executor, call(1, {route.user, route.upstream_delay[1]}, tally[1]), asio::deferred),
      asio::co_spawn(executor, call(2, {route.user, route.upstream_delay[2]}, tally[2]), asio::deferred));
  // The first call to fail cancels the others, and a cancel of this task reaches all three.
  auto all = fan_out.async_wait(asio::experimental::wait_for_one_error(), asio::use_awaitable);
  auto [order, profile_error, profile, orders_error, orders, recommendations_error, recommendations] =
      co_await std::move(all);
  const std::array<std::exception_ptr, kServiceCount> errors = {profile_error, orders_error, recommendations_error};
  for (std::size_t call : order) {  // in the order they ended: the first failure is the cause
    if (errors[call]) std::rethrow_exception(errors[call]);
  }
  co_return combine_answers(route.user, {std::move(profile), std::move(orders), std::move(recommendations)});
}

}  // namespace dashboard

#include "legacy_http_server/dashboard.hpp"

#include <boost/json.hpp>
#include <boost/json/src.hpp>  // Boost.JSON header-only: compiled into this file once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

namespace dashboard {
namespace {

using Parameters = std::vector<std::pair<std::string_view, std::string_view>>;

// Splits "a=1&b=2" into pairs; values are used as they come (the parameters here are numbers,
// so there is nothing to percent-decode).
Parameters split_query(std::string_view query) {
  Parameters parameters;
  while (!query.empty()) {
    auto end = query.find('&');
    std::string_view pair = query.substr(0, end);
    auto equals = pair.find('=');
    if (equals == std::string_view::npos) {
      parameters.emplace_back(pair, std::string_view());
    } else {
      parameters.emplace_back(pair.substr(0, equals), pair.substr(equals + 1));
    }
    if (end == std::string_view::npos) break;
    query.remove_prefix(end + 1);
  }
  return parameters;
}

std::optional<std::string_view> find_parameter(const Parameters& parameters, std::string_view name) {
  for (const auto& [key, value] : parameters) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::optional<int> parse_bounded(std::string_view text, int low, int high) {
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < low || value > high) return std::nullopt;
  return value;
}

Route route_of(Route::Kind kind) {
  Route route;
  route.kind = kind;
  return route;
}

Route bad_request(std::string problem) {
  Route route = route_of(Route::Kind::bad_request);
  route.problem = std::move(problem);
  return route;
}

}  // namespace

Route match_route(boost::beast::http::verb method, std::string_view target) {
  auto question = target.find('?');
  std::string_view path = target.substr(0, question);
  Parameters parameters =
      question == std::string_view::npos ? Parameters() : split_query(target.substr(question + 1));

  const bool dashboard = path == "/dashboard";
  const bool slow_dashboard = path == "/dashboard/slow";
  const bool stats = path == "/stats";
  if (!dashboard && !slow_dashboard && !stats) return Route{};
  if (method != boost::beast::http::verb::get) return route_of(Route::Kind::method_not_allowed);
  if (stats) return route_of(Route::Kind::stats);

  Route route = route_of(Route::Kind::dashboard);
  auto user = find_parameter(parameters, "user");
  if (!user) return bad_request("the user parameter is required");
  auto user_id = parse_bounded(*user, 1, 1'000'000);
  if (!user_id) return bad_request("user must be a number from 1 to 1000000");
  route.user = *user_id;

  if (slow_dashboard) {
    route.upstream_delay[2] = kMaxUpstreamDelay;
  } else if (auto delay = find_parameter(parameters, "delay_ms")) {
    auto delay_ms = parse_bounded(*delay, 0, static_cast<int>(kMaxUpstreamDelay.count()));
    if (!delay_ms) return bad_request("delay_ms must be a number from 0 to 10000");
    route.upstream_delay.fill(std::chrono::milliseconds(*delay_ms));
  }
  return route;
}

std::string upstream_target(std::string_view service, const UpstreamQuery& query) {
  return "/v1/" + std::string(service) + "?user=" + std::to_string(query.user) +
         "&delay_ms=" + std::to_string(query.delay.count());
}

std::optional<UpstreamQuery> parse_upstream_target(std::string_view target) {
  auto question = target.find('?');
  if (question == std::string_view::npos || !target.starts_with("/v1/")) return std::nullopt;
  Parameters parameters = split_query(target.substr(question + 1));
  auto user = find_parameter(parameters, "user");
  auto delay = find_parameter(parameters, "delay_ms");
  if (!user || !delay) return std::nullopt;
  auto user_id = parse_bounded(*user, 1, 1'000'000);
  auto delay_ms = parse_bounded(*delay, 0, static_cast<int>(kMaxUpstreamDelay.count()));
  if (!user_id || !delay_ms) return std::nullopt;
  return UpstreamQuery{.user = *user_id, .delay = std::chrono::milliseconds(*delay_ms)};
}

std::string service_answer(std::string_view service, int user) {
  boost::json::object answer{{"service", service}, {"user", user}};
  if (service == "profile") {
    answer["name"] = "user-" + std::to_string(user);
    answer["tier"] = user % 2 == 0 ? "gold" : "silver";
  } else if (service == "orders") {
    boost::json::array orders;
    for (int order = 1; order <= user % 3 + 1; ++order) {
      orders.push_back(boost::json::object{{"id", user * 100 + order}, {"total_cents", 999 * order}});
    }
    answer["orders"] = std::move(orders);
  } else {
    boost::json::array items;
    for (int item = 1; item <= 3; ++item) items.push_back(boost::json::string("item-" + std::to_string(user + item)));
    answer["items"] = std::move(items);
  }
  return boost::json::serialize(answer);
}

namespace {

// Boost.JSON reads a number beyond double's range (1e999) as infinity, which it would then
// write as `Infinity`: not JSON. Such an answer is refused like any other bad one.
bool numbers_are_finite(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::double_:
      return std::isfinite(value.get_double());
    case boost::json::kind::array:
      return std::all_of(value.get_array().begin(), value.get_array().end(), numbers_are_finite);
    case boost::json::kind::object:
      return std::all_of(value.get_object().begin(), value.get_object().end(),
                         [](const auto& member) { return numbers_are_finite(member.value()); });
    default:
      return true;
  }
}

}  // namespace

std::string combine_answers(int user, const std::array<std::string, kServiceCount>& answers) {
  boost::json::object combined{{"user", user}};
  for (std::size_t i = 0; i < kServiceCount; ++i) {
    boost::system::error_code error;
    boost::json::value answer = boost::json::parse(answers[i], error);
    if (error || !answer.is_object() || !numbers_are_finite(answer)) {
      throw BadUpstreamAnswer("the " + std::string(kServices[i]) + " service did not answer a JSON object");
    }
    combined[kServices[i]] = std::move(answer);
  }
  return boost::json::serialize(combined);
}

}  // namespace dashboard

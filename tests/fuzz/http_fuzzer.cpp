// libFuzzer harness for the HTTP example's protocol code (examples/legacy_http_server): the
// routes a request target maps to, the upstream targets the dashboard sends and parses
// back, and the combination of upstream answers into one JSON document. Byte 0 picks the
// method, byte 1 what to drive; the rest is the target (or three answers separated by NUL).
// Nothing may throw but the documented BadUpstreamAnswer, and every value stays in bounds.

#include "legacy_http_server/dashboard.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace http = boost::beast::http;

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "http_fuzzer: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

void check_query_round_trip(std::string_view service, const dashboard::UpstreamQuery& query) {
  const std::string target = dashboard::upstream_target(service, query);
  auto parsed = dashboard::parse_upstream_target(target);
  if (!parsed || parsed->user != query.user || parsed->delay != query.delay) fail("upstream target does not round-trip", target);
}

void drive_route(http::verb method, std::string_view target) {
  const dashboard::Route route = dashboard::match_route(method, target);
  using Kind = dashboard::Route::Kind;
  const std::string_view path = target.substr(0, target.find('?'));
  const bool known = path == "/dashboard" || path == "/dashboard/slow" || path == "/stats";
  if (!known && route.kind != Kind::not_found) fail("an unknown path was routed", target);
  if (known && method != http::verb::get && route.kind != Kind::method_not_allowed) fail("a method slipped through", target);
  if (route.kind == Kind::bad_request && route.problem.empty()) fail("bad_request without a reason", target);
  if (route.kind != Kind::dashboard) return;
  if (route.user < 1 || route.user > 1'000'000) fail("user out of bounds", target);
  for (std::size_t i = 0; i < dashboard::kServiceCount; ++i) {
    const auto delay = route.upstream_delay[i];
    if (delay.count() < 0 || delay > dashboard::kMaxUpstreamDelay) fail("delay out of bounds", target);
    check_query_round_trip(dashboard::kServices[i], {.user = route.user, .delay = delay});
  }
}

void drive_upstream_target(std::string_view target) {
  auto parsed = dashboard::parse_upstream_target(target);
  if (!parsed) return;
  if (parsed->user < 1 || parsed->user > 1'000'000) fail("parsed user out of bounds", target);
  if (parsed->delay.count() < 0 || parsed->delay > dashboard::kMaxUpstreamDelay) fail("parsed delay out of bounds", target);
  check_query_round_trip("profile", *parsed);
}

void drive_combine(std::string_view rest, int user) {
  std::array<std::string, dashboard::kServiceCount> answers;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const std::size_t end = i + 1 < answers.size() ? rest.find('\0') : std::string_view::npos;
    answers[i] = std::string(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  std::string document;
  try {
    document = dashboard::combine_answers(user, answers);
  } catch (const dashboard::BadUpstreamAnswer&) {
    return;  // documented: an answer that is not a JSON object
  }
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(document, error);
  if (error || !value.is_object()) fail("combined document is not a JSON object", document);
  const auto& object = value.as_object();
  const auto* u = object.if_contains("user");
  if (u == nullptr || !u->is_int64() || u->as_int64() != user) fail("combined document lost the user", document);
  for (std::string_view service : dashboard::kServices) {
    const auto* part = object.if_contains(service);
    if (part == nullptr || !part->is_object()) fail("combined document lost a service", document);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static constexpr http::verb kMethods[] = {http::verb::get,    http::verb::post,  http::verb::head,
                                            http::verb::put,    http::verb::delete_, http::verb::options,
                                            http::verb::patch,  http::verb::unknown};
  const http::verb method = kMethods[data[0] % std::size(kMethods)];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[1] % 3) {
    case 0: drive_route(method, rest); break;
    case 1: drive_upstream_target(rest); break;
    default: drive_combine(rest, 1 + data[0] * 3907 % 1'000'000); break;
  }
  return 0;
}

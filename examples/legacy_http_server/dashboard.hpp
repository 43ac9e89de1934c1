#pragma once

// The dashboard application's protocol logic, free of sockets and threads: which route a
// request names, what each upstream service answers, and how the answers combine into one
// JSON document. A fuzzer can drive match_route(), parse_upstream_target() and
// combine_answers() directly.

#include <boost/beast/http/verb.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dashboard {

/// The upstream services the dashboard fans out to, in the order of every per-service array.
inline constexpr std::array<std::string_view, 3> kServices = {"profile", "orders", "recommendations"};
inline constexpr std::size_t kServiceCount = kServices.size();

/// How long an upstream may be asked to take: bounded, so that no request can park a session
/// for longer than this.
inline constexpr std::chrono::milliseconds kMaxUpstreamDelay{10'000};

/// What a request to the legacy server asks for.
struct Route {
  enum class Kind { dashboard, stats, not_found, method_not_allowed, bad_request };
  Kind kind = Kind::not_found;
  int user = 0;
  /// Extra time each upstream takes before it answers. `/dashboard?delay_ms=N` delays all
  /// three; `/dashboard/slow` delays only the recommendations service, by kMaxUpstreamDelay.
  std::array<std::chrono::milliseconds, kServiceCount> upstream_delay{};
  /// For bad_request: what is wrong, for the response body.
  std::string problem;
};

/// Maps a request line to a route. Never throws for any input.
/**
 * - `GET /dashboard?user=N[&delay_ms=M]`: the fan-out (N in 1..1000000, M in 0..10000).
 * - `GET /dashboard/slow?user=N`: the fan-out with the recommendations service far slower
 *   than the server's deadline.
 * - `GET /stats`: the server's counters.
 * Anything else is not_found, method_not_allowed (a known path with a method other than
 * GET) or bad_request (a known path with a missing or malformed parameter).
 */
Route match_route(boost::beast::http::verb method, std::string_view target);

/// What an upstream request asks of its service.
struct UpstreamQuery {
  int user = 0;
  std::chrono::milliseconds delay{0};
};

/// The request target the dashboard sends to `service`.
std::string upstream_target(std::string_view service, const UpstreamQuery& query);

/// Parses a target made by upstream_target(); nullopt for anything malformed.
std::optional<UpstreamQuery> parse_upstream_target(std::string_view target);

/// The JSON document `service` answers for `user` (made-up but deterministic data).
std::string service_answer(std::string_view service, int user);

/// An upstream answered something that is not a JSON object (or holds a number JSON cannot
/// write back: beyond the range of a double).
class BadUpstreamAnswer : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Combines the three services' answers (in kServices order) into the dashboard document:
/// `{"user": N, "profile": {...}, "orders": {...}, "recommendations": {...}}`.
/// Throws BadUpstreamAnswer when an answer is not a JSON object or holds such a number.
std::string combine_answers(int user, const std::array<std::string, kServiceCount>& answers);

}  // namespace dashboard

#pragma once

#include <loopbridge/loop/errors.hpp>

#include <chrono>
#include <cstdint>
#include <ratio>
#include <type_traits>

namespace loopbridge::detail {

/// True for a floating-point NaN. Without <cmath>, which every user of the public headers
/// would otherwise compile.
template <class T>
constexpr bool is_nan(T value) noexcept {
  return value != value;  // NOLINT(misc-redundant-expression): only NaN differs from itself
}

/// `Duration` with a Rep of at least 64 bits: compares with the clock's range without
/// overflowing a narrow Rep (an int count of milliseconds).
template <class Duration>
using wide_duration_t =
    std::chrono::duration<std::common_type_t<typename Duration::rep, std::int64_t>, typename Duration::period>;

/// The steady-clock time `timeout` from now, saturating at time_point::max(): a huge timeout
/// (`seconds::max()`, `nanoseconds::max()`, infinity) means "no limit", as Python's huge
/// timeouts do, instead of overflowing into a deadline already past. Any Rep and Period.
/// Throws InvalidArgument for a negative timeout and for a floating-point one that is not a
/// number.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
  using Clock = std::chrono::steady_clock;
  // Clock ticks per tick of `timeout`.
  using Ticks = std::ratio_divide<Period, Clock::period>;
  if constexpr (std::is_floating_point_v<Rep>) {
    // NaN passes every comparison a caller made (it is neither negative nor positive).
    if (is_nan(timeout.count())) throw InvalidArgument("a timeout must be a number, not NaN");
  }
  if (timeout < std::chrono::duration<Rep, Period>::zero()) throw InvalidArgument("a timeout must not be negative");
  const auto now = Clock::now();
  const auto room = Clock::time_point::max() - now;
  // A little short of the room: no rounding of a floating or coarse timeout carries past max().
  const auto near_room = room - room / 1024;
  if constexpr (std::is_floating_point_v<Rep> || (Ticks::num != 1 && Ticks::den != 1)) {
    // In long double: an integral conversion here would multiply before it divides, and
    // could overflow.
    const long double ticks = static_cast<long double>(timeout.count()) * Ticks::num / Ticks::den;
    if (ticks >= static_cast<long double>(near_room.count())) return Clock::time_point::max();
    auto whole = static_cast<Clock::rep>(ticks);  // not negative: rounds down
    if (static_cast<long double>(whole) < ticks) ++whole;
    return now + Clock::duration(whole);
  } else if constexpr (Ticks::den != 1) {
    // Finer than the clock: a pure divide, which cannot overflow.
    const auto converted = std::chrono::ceil<Clock::duration>(timeout);
    return converted >= near_room ? Clock::time_point::max() : now + converted;
  } else {
    // Coarser: a pure multiply. Compared in the timeout's own unit, with at least 64 bits:
    // converting the timeout to nanoseconds first could overflow, and so could the room in a
    // narrow Rep (int seconds).
    using Wide = wide_duration_t<std::chrono::duration<Rep, Period>>;
    const Wide wide = timeout;
    if (wide >= std::chrono::duration_cast<Wide>(near_room)) return Clock::time_point::max();
    return now + std::chrono::duration_cast<Clock::duration>(wide);
  }
}

/// The time left until `deadline` on its own clock, in seconds: negative once it passed,
/// infinite for an infinite deadline. Never overflows, whatever Duration the time point has.
/// Throws InvalidArgument for a floating-point deadline that is not a number.
template <class Clock, class Duration>
std::chrono::duration<long double> time_left(std::chrono::time_point<Clock, Duration> deadline) {
  const std::chrono::duration<long double> at(deadline.time_since_epoch());
  if (is_nan(at.count())) throw InvalidArgument("a deadline must be a number, not NaN");
  return at - std::chrono::duration<long double>(Clock::now().time_since_epoch());
}

/// a + b for non-negative durations, saturating at nanoseconds::max().
inline std::chrono::nanoseconds saturating_add(std::chrono::nanoseconds a, std::chrono::nanoseconds b) {
  return b > std::chrono::nanoseconds::max() - a ? std::chrono::nanoseconds::max() : a + b;
}

}  // namespace loopbridge::detail

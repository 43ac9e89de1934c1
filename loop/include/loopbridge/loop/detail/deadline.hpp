#pragma once

#include <loopbridge/loop/errors.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <ratio>
#include <type_traits>

namespace loopbridge::detail {

/// `Duration` with a Rep of at least 64 bits: compares with the clock's range without
/// overflowing a narrow Rep (an int count of milliseconds).
template <class Duration>
using wide_duration_t =
    std::chrono::duration<std::common_type_t<typename Duration::rep, std::int64_t>, typename Duration::period>;

/// The steady-clock time `timeout` from now, saturating at time_point::max(): a huge timeout
/// (`seconds::max()`, `nanoseconds::max()`) means "no limit", as Python's huge timeouts do,
/// instead of overflowing into a deadline already past. `timeout` must not be negative.
/// Throws InvalidArgument for a floating-point timeout that is not a number.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
  using Clock = std::chrono::steady_clock;
  const auto now = Clock::now();
  const auto room = Clock::time_point::max() - now;
  // A little short of the room: no rounding of a floating or coarse timeout carries past max().
  const auto near_room = room - room / 1024;
  if constexpr (std::is_floating_point_v<Rep>) {
    // NaN passes every comparison a caller made (it is neither negative nor positive), and a
    // huge value would overflow the conversion: both are settled here, in floating point.
    if (std::isnan(timeout.count())) throw InvalidArgument("a timeout that is not a number");
    if (std::chrono::duration<long double>(timeout) >= std::chrono::duration<long double>(near_room)) {
      return Clock::time_point::max();
    }
    return now + std::chrono::ceil<Clock::duration>(timeout);
  } else if constexpr (std::ratio_less_v<Period, Clock::period>) {
    const auto converted = std::chrono::ceil<Clock::duration>(timeout);  // to a coarser unit: cannot overflow
    return converted >= near_room ? Clock::time_point::max() : now + converted;
  } else {
    // Compared in the timeout's own unit, with at least 64 bits: converting the timeout to
    // nanoseconds first could overflow, and so could the room in a narrow Rep (int seconds).
    using Wide = wide_duration_t<std::chrono::duration<Rep, Period>>;
    const Wide wide = timeout;
    if (wide >= std::chrono::duration_cast<Wide>(near_room)) return Clock::time_point::max();
    return now + std::chrono::ceil<Clock::duration>(wide);
  }
}

/// a + b for non-negative durations, saturating at nanoseconds::max().
inline std::chrono::nanoseconds saturating_add(std::chrono::nanoseconds a, std::chrono::nanoseconds b) {
  return b > std::chrono::nanoseconds::max() - a ? std::chrono::nanoseconds::max() : a + b;
}

}  // namespace loopbridge::detail

#pragma once

// One line about a loop's counters (LoopHandle::stats()), for the examples' shutdown output.

#include <loopbridge/loopbridge.hpp>

#include <chrono>
#include <sstream>
#include <string>

namespace examples {

inline std::string describe(const loopbridge::LoopStats& stats) {
  auto us = [](std::chrono::nanoseconds d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  std::ostringstream line;
  line << stats.submitted << " submitted, " << stats.in_flight << " in flight; submit-to-start lag p50 "
       << us(stats.lag_p50) << " us, p99 " << us(stats.lag_p99) << " us, max " << us(stats.lag_max)
       << " us; longest handler " << us(stats.longest_handler) << " us; " << stats.stalls << " stalls, "
       << stats.errors_reported << " errors reported";
  return line.str();
}

}  // namespace examples

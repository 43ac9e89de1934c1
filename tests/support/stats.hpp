#pragma once

// Checks on a loop's counters that many tests share.

#include <loopbridge/loop/stats.hpp>

#include <catch2/catch.hpp>

namespace loopbridge::test {

/// Requires that every submission is accounted for: ended one way or another, or in flight.
inline void require_reconciled(const LoopStats& s) {
  INFO("submitted " << s.submitted << " completed " << s.completed << " failed " << s.failed << " cancelled "
                    << s.cancelled << " rejected " << s.rejected << " abandoned " << s.abandoned << " in flight "
                    << s.in_flight);
  REQUIRE(s.submitted == s.completed + s.failed + s.cancelled + s.rejected + s.abandoned + s.in_flight);
}

}  // namespace loopbridge::test

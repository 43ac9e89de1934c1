#pragma once

#include <loopbridge/loop/options.hpp>

namespace loopbridge::detail {

/// InvalidArgument for a negative deadline. Every StopOptions loopbridge takes passes here.
void check_stop_options(const StopOptions& options);
/// InvalidArgument for a bad name, a negative duration, a start_timeout of zero, a
/// spin_before_sleep above 10 ms, no workers, a CPU that does not exist or a stack size out of
/// range. Returns the options, for a constructor's initialiser.
LoopOptions checked(LoopOptions options);
/// LoopOptions::spin_before_sleep's limit: the loop's own timers wait while it spins.
inline constexpr std::chrono::milliseconds kMaxSpinBeforeSleep{10};

}  // namespace loopbridge::detail

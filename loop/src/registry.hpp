#pragma once

#include <loopbridge/loop/detail/ref.hpp>

#include <cstdint>
#include <vector>

namespace loopbridge::detail {

class LoopCore;

/// Every loop of the process, for live_loops() and for fork(): in the child, every loop the
/// parent had started is dead (its thread was not copied), and the registry marks it so.
class Registry {
public:
  /// A process-wide number, in creation order: tells loops made after a point in time.
  static std::uint64_t next_serial() noexcept;
  static void add(LoopCore& loop);
  static void remove(LoopCore& loop) noexcept;
  /// Every loop not yet stopped, in creation order.
  static std::vector<Ref<LoopCore>> live();
  /// The fork() child's handler: every loop the parent started is dead here.
  static void orphan_all_in_fork_child() noexcept;
};

}  // namespace loopbridge::detail

#include "thread_roles.hpp"

#include <utility>

namespace loopbridge::detail {
namespace {

constinit thread_local LoopCore* t_core = nullptr;
constinit thread_local const LoopCore* t_work_owner = nullptr;

}  // namespace

LoopCore* this_thread_core() noexcept { return t_core; }
void set_this_thread_core(LoopCore* core) noexcept { t_core = core; }
const LoopCore* this_thread_work_owner() noexcept { return t_work_owner; }
const LoopCore* exchange_this_thread_work_owner(const LoopCore* owner) noexcept {
  return std::exchange(t_work_owner, owner);
}

bool this_thread_must_not_join(const LoopCore& loop) noexcept { return t_core == &loop || t_work_owner == &loop; }

}  // namespace loopbridge::detail

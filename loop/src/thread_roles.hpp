#pragma once

namespace loopbridge::detail {

class LoopCore;

/// The loop whose thread is running the caller, or null.
LoopCore* this_thread_core() noexcept;
void set_this_thread_core(LoopCore* core) noexcept;
/// The loop whose stop waits for the work this thread runs (one of its to_thread workers,
/// or a host running one of its tasks' call_host() functions): a stop of that loop must not
/// join here. Null elsewhere. The exchange sets it and returns the previous one.
const LoopCore* this_thread_work_owner() noexcept;
const LoopCore* exchange_this_thread_work_owner(const LoopCore* owner) noexcept;
/// True on a thread where a stop of `loop` must not join: its own thread, one of its
/// workers, a host running one of its tasks' call_host() functions.
bool this_thread_must_not_join(const LoopCore& loop) noexcept;

}  // namespace loopbridge::detail

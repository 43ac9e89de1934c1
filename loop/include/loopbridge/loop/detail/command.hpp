#pragma once

namespace loopbridge::detail {

class Engine;

/// One cross-thread request to a loop: run a task, cancel one, cancel all, stop, resume a
/// coroutine. Nodes are intrusive (embedded in the object they act on), so queueing one
/// allocates nothing.
class Command {
public:
  /// Runs on the loop thread, in queue order. Releases whatever the queue held.
  virtual void execute(Engine& engine) noexcept = 0;
  /// The loop closed before the command ran: settle or free it without running it. Runs on
  /// the loop thread during its final drain.
  virtual void discard(Engine& engine) noexcept = 0;

  Command* next_in_queue = nullptr;

protected:
  ~Command() = default;
};

}  // namespace loopbridge::detail

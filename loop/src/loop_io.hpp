#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <optional>

namespace loopbridge::detail {

/// The io_context a loop runs: its own, or one its owner lends it. A borrowed one is claimed
/// while the loop runs it (a second loop, or a second thread, would run it beside the loop).
class LoopIo {
public:
  /// `borrowed`: its owner keeps it (and keeps it alive until the loop has stopped); null:
  /// the loop makes its own.
  explicit LoopIo(boost::asio::io_context* borrowed);

  boost::asio::io_context& io() noexcept { return io_; }
  bool owned() const noexcept { return owned_.has_value(); }

  /// At the start of a loop on a borrowed io_context: checks that this loop alone can run
  /// it, and marks it as driven by `loop` (InvalidState if not). Nothing for an owned one.
  void claim(const void* loop);
  void release_claim() noexcept;
  /// True the first time: a thread other than the loop's ran the borrowed io_context.
  bool first_foreign_run() noexcept { return !foreign_runner_reported_.exchange(true, std::memory_order_relaxed); }
  /// An owned io_context: destroys its pending handlers (and the coroutine frames they hold)
  /// here, on the loop thread; the object stays for late posts.
  void shut_down_owned() noexcept;

private:
  class OwnedIoContext : public boost::asio::io_context {
  public:
    OwnedIoContext() : boost::asio::io_context(1) {}
    using boost::asio::io_context::shutdown;
  };

  std::optional<OwnedIoContext> owned_;  // empty when the io_context is borrowed
  boost::asio::io_context& io_;          // owned_'s, or the borrowed one
  std::atomic<const void*>* driver_ = nullptr;  // the borrowed io_context's record of its loop, once claimed
  std::atomic<bool> foreign_runner_reported_{false};
};

}  // namespace loopbridge::detail

// The io_context a loop runs; with a borrowed one, claiming it at start and leaving it at
// stop.

#include "loop_core.hpp"

#include <boost/asio/execution_context.hpp>

#include <string>

namespace loopbridge::detail {
namespace {

// Kept in the io_context itself: which loop drives it now. A second loop driving the same
// io_context would run it on a second thread.
class DrivingLoop final : public boost::asio::execution_context::service {
public:
  static inline boost::asio::execution_context::id id;

  explicit DrivingLoop(boost::asio::execution_context& context) : service(context) {}

  std::atomic<const void*> loop{nullptr};

private:
  void shutdown() override {}
};

}  // namespace

LoopIo::LoopIo(boost::asio::io_context* borrowed) : io_(borrowed ? *borrowed : owned_.emplace()) {}

void LoopIo::claim(const void* loop) {
  if (owned()) return;
  if (io_.stopped()) {
    throw InvalidState("the borrowed io_context is stopped: its owner calls restart() on it before the loop starts");
  }
  if (io_.get_executor().running_in_this_thread()) {
    throw InvalidState("the loop was started from inside the borrowed io_context's run(): only the loop may run it");
  }
  std::atomic<const void*>& driver = boost::asio::use_service<DrivingLoop>(io_).loop;
  const void* expected = nullptr;
  if (!driver.compare_exchange_strong(expected, loop, std::memory_order_acq_rel)) {
    throw InvalidState("the borrowed io_context is already driven by another loop");
  }
  driver_ = &driver;
}

void LoopIo::release_claim() noexcept {
  if (driver_ == nullptr) return;
  driver_->store(nullptr, std::memory_order_release);
  driver_ = nullptr;
}

void LoopIo::shut_down_owned() noexcept {
  if (owned_) owned_->shutdown();
}

void LoopCore::run_commands_borrowed() noexcept {
  if (runs_here()) {
    run_commands();
    return;
  }
  if (phase() >= Phase::closed) return;  // a wake-up the stop left behind: nothing to run
  if (io_.first_foreign_run()) {
    report_error(std::make_exception_ptr(InvalidState("a thread other than the loop's ran its borrowed io_context, "
                                                      "which only the loop's thread may run while the loop lives")),
                 "another thread's io_context::run()");
  }
  drain_.wake();  // for the loop's thread
}

}  // namespace loopbridge::detail

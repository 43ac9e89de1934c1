// A loop driving an io_context that its owner keeps: claiming it at start, leaving it at stop.

#include <loopbridge/loop/detail/loop_core.hpp>

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

  std::atomic<LoopCore*> loop{nullptr};

private:
  void shutdown() override {}
};

}  // namespace

void LoopCore::claim_io_context() {
  if (owned_io_) return;
  if (io_.stopped()) {
    throw InvalidState("the borrowed io_context is stopped: its owner calls restart() on it before the loop starts");
  }
  if (io_.get_executor().running_in_this_thread()) {
    throw InvalidState("the loop was started from inside the borrowed io_context's run(): only the loop may run it");
  }
  std::atomic<LoopCore*>& driver = boost::asio::use_service<DrivingLoop>(io_).loop;
  LoopCore* expected = nullptr;
  if (!driver.compare_exchange_strong(expected, this, std::memory_order_acq_rel)) {
    throw InvalidState("the borrowed io_context is already driven by another loop");
  }
  io_driver_ = &driver;
}

void LoopCore::release_io_context_claim() noexcept {
  if (io_driver_ == nullptr) return;
  io_driver_->store(nullptr, std::memory_order_release);
  io_driver_ = nullptr;
}

void LoopCore::leave_borrowed_io_context() noexcept {
  if (!abandoned_.empty()) {
    // Their frames wait in the io_context on operations that ignored the cancel: only its
    // owner can end them now, by running it (they resume and finish on that thread) or by
    // destroying it. Each frame keeps its task and callable alive, and the task keeps this
    // core, which a resumption still passes through (settled, it changes nothing there).
    const std::string what =
        std::to_string(abandoned_.size()) + " abandoned task(s) may still be suspended in the borrowed io_context";
    report_error(std::make_exception_ptr(TaskAbandoned(what)),
                 "stop (their frames end when the io_context's owner next runs or destroys it)");
    for (TaskBase* task : abandoned_) task->state().release();  // each keeps this core (start_task)
    abandoned_.clear();
  }
  release_io_context_claim();
}

}  // namespace loopbridge::detail

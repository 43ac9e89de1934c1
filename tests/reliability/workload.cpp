#include "workload.hpp"

#include <loopbridge/loopbridge.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <thread>

namespace loopbridge::reliability {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Tells the ledger how a task it cannot see the handle of ended.
void record_outcome(Ledger& ledger, std::exception_ptr error) {
  if (!error) {
    ledger.values.fetch_add(1);
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const TaskAbandoned&) {
    ledger.abandoned.fetch_add(1);
  } catch (const TaskCancelled&) {
    ledger.cancelled.fetch_add(1);
  } catch (const LoopStopped&) {
    ledger.rejected.fetch_add(1);
  } catch (const Fault&) {
    ledger.own_errors.fetch_add(1);
  } catch (...) {
    ledger.violation("nested task ended with an unexpected error: " + what_of(error));
  }
}

}  // namespace

asio::awaitable<void> sleep_us(std::uint32_t us) {
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::microseconds(us));
  co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<int> sleeper(std::uint32_t us) {
  co_await sleep_us(us);
  co_return kValue;
}

asio::awaitable<int> throwing_coroutine(LedgerPtr ledger, std::uint32_t us) {
  co_await sleep_us(us);
  ledger->throw_fault("task");
}

// Swallows the first cancellation, then goes on for a while: abandoned when the stop's
// cancel deadline is shorter than that.
asio::awaitable<int> stubborn(std::uint32_t us, std::uint32_t after_cancel_us) {
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::microseconds(us));
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_await asio::this_coro::reset_cancellation_state();
    timer.expires_after(std::chrono::microseconds(after_cancel_us));
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return kValue;
}

asio::awaitable<int> forever() {
  co_await sleep_us(3'600'000'000u);
  co_return kValue;
}

// Submits an inner task from the loop thread and co_awaits it; how the inner task ended is
// recorded even when this coroutine is cancelled or abandoned first.
asio::awaitable<int> nested(LedgerPtr ledger, std::uint32_t us, bool inner_throws) {
  BackgroundLoop* here = current_loop();
  if (here == nullptr) co_return kValue;  // the owner is going away: nothing to nest on
  ledger->submissions.fetch_add(1);
  TaskHandle<int> inner = inner_throws ? here->submit([ledger, us] { return throwing_coroutine(ledger, us); })
                                       : here->submit([us] { return sleeper(us); });
  struct RecordLater {
    TaskHandle<int>& inner;
    LedgerPtr ledger;
    ~RecordLater() {
      if (!inner.valid()) return;
      try {
        std::move(inner).on_settled([ledger = ledger](TaskHandle<int> settled) {
          std::exception_ptr error;
          try {
            settled.result();
          } catch (...) {
            error = std::current_exception();
          }
          record_outcome(*ledger, error);
        });
      } catch (const std::exception& e) {
        ledger->violation(std::string("on_settled refused the nested task: ") + e.what());
      }
    }
  } record_later{inner, ledger};
  try {
    auto get = inner.async_get();
    co_await std::move(get);
    record_outcome(*ledger, nullptr);
  } catch (...) {
    // Still valid: this coroutine's wait was cancelled, the inner task goes on (recorded
    // later). Taken: the inner task's own outcome.
    if (inner.valid()) throw;
    record_outcome(*ledger, std::current_exception());
  }
  co_return kValue;
}

asio::awaitable<int> offload(LedgerPtr ledger, std::uint32_t us, bool throws, bool abandon_on_cancel) {
  auto op = to_thread(
#if LOOPBRIDGE_HAS_STOP_TOKEN
      [ledger, us, throws](std::stop_token stop) {
        auto asked_to_stop = [&stop] { return stop.stop_requested(); };
#else
      [ledger, us, throws] {
        auto asked_to_stop = [] { return false; };  // without std::stop_token it cannot be asked
#endif
        const auto until = Clock::now() + std::chrono::microseconds(us);
        while (Clock::now() < until && !asked_to_stop()) std::this_thread::sleep_for(50us);
        if (throws) ledger->throw_fault("offloaded function");
        return kValue;
      },
      {.abandon_on_cancel = abandon_on_cancel});
  try {
    co_return co_await std::move(op);
  } catch (const LoopStopped&) {
    // The pool refused it: the task's own failure, not a refused submission.
    throw Fault("to_thread refused");
  }
}

asio::awaitable<int> calls_host(LedgerPtr ledger, bool throws) {
  auto op = call_host([ledger, throws] {
    if (throws) ledger->throw_fault("host call");
    return kValue;
  });
  co_return co_await std::move(op);
}

}  // namespace loopbridge::reliability

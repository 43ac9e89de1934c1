#pragma once

// The tasks a scenario's operations submit: coroutines and callables that sleep, throw,
// ignore a cancellation, nest, offload or call back into their host, recording what they
// did in the ledger. Internal to the scenario engine.

#include "ledger.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>

namespace loopbridge::reliability {

/// Sleeps `us` microseconds on a timer (cancellable).
boost::asio::awaitable<void> sleep_us(std::uint32_t us);
/// Sleeps, then returns kValue.
boost::asio::awaitable<int> sleeper(std::uint32_t us);
/// Sleeps, then throws a Fault.
boost::asio::awaitable<int> throwing_coroutine(LedgerPtr ledger, std::uint32_t us);
/// Swallows the first cancellation and goes on for `after_cancel_us`: abandoned when the
/// stop's cancel deadline is shorter.
boost::asio::awaitable<int> stubborn(std::uint32_t us, std::uint32_t after_cancel_us);
/// Never finishes by itself.
boost::asio::awaitable<int> forever();
/// Submits an inner task from the loop thread and co_awaits it; records the inner task's
/// outcome even when this coroutine is cancelled or abandoned first.
boost::asio::awaitable<int> nested(LedgerPtr ledger, std::uint32_t us, bool inner_throws);
/// Offloads a stop-aware function (throwing a Fault if asked) with to_thread.
boost::asio::awaitable<int> offload(LedgerPtr ledger, std::uint32_t us, bool throws, bool abandon_on_cancel);
/// Calls back into the submitting host (throwing a Fault there if asked).
boost::asio::awaitable<int> calls_host(LedgerPtr ledger, bool throws);

}  // namespace loopbridge::reliability

#pragma once

#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/loop_handle.hpp>
#include <loopbridge/loop/options.hpp>

#include <functional>
#include <memory>

/// @file
/// A process-wide default loop, created on first use (asyncio's event loop policy).

namespace loopbridge {

/// Makes (not starts) the default loop. The default factory makes
/// `BackgroundLoop({.name = "lb-default"})`.
using LoopFactory = std::function<std::unique_ptr<BackgroundLoop>()>;

/// The process-wide default loop, made by the current factory and started on first use.
/**
 * Every call returns a handle to the same loop until reset_default_loop(). At process exit
 * (std::exit, or returning from main) the loop is stopped with its destructor deadlines,
 * before the static objects made before it are destroyed: no static-destruction-order
 * crash, no hang. After that, exit-time code gets the stopped loop (its submissions settle
 * LoopStopped, run() throws it), never a new loop that nobody would stop.
 *
 * @par Thread safety
 * Safe from any thread; the first callers race to one loop.
 *
 * @par Throws
 * Whatever the factory or start() throws (the next call tries again); InvalidState if the
 * factory returned null; LoopStopped once the exit hook ran with no loop to hand out.
 */
LoopHandle default_loop();

/// Replaces how the default loop is made (an empty factory restores the default one). Takes
/// effect for the next loop made: call reset_default_loop() to replace a running one. Tests
/// install their own loop this way.
void set_default_loop_factory(LoopFactory factory);

/// Stops and forgets the current default loop, if any; the next default_loop() makes a new
/// one. Returns the stopped loop's report (empty when there was none).
/// Throws DeadlockError on a loop thread.
ShutdownReport reset_default_loop(StopOptions options = {});

}  // namespace loopbridge

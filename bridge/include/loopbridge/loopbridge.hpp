#pragma once

/// @file
/// Everything loopbridge offers, in one include.

#include <loopbridge/bridge/default_loop.hpp>
#include <loopbridge/bridge/futures.hpp>
#include <loopbridge/bridge/host_call.hpp>
#include <loopbridge/bridge/run.hpp>
#include <loopbridge/bridge/to_thread.hpp>
#include <loopbridge/loop/background_loop.hpp>
#include <loopbridge/loop/context.hpp>
#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/loop_handle.hpp>
#include <loopbridge/loop/loop_pool.hpp>
#include <loopbridge/loop/stats.hpp>
#include <loopbridge/loop/stop_token.hpp>
#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/platform.hpp>
#include <loopbridge/loop/task_handle.hpp>

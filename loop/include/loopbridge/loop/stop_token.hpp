#pragma once

/// @file
/// LOOPBRIDGE_HAS_STOP_TOKEN: whether this build offers the parts of loopbridge that take a
/// std::stop_token.
///
/// Standard libraries without `<stop_token>` and `std::jthread` (libc++ before release 18,
/// as Debian 12 and older Apple and embedded toolchains ship it) compile those parts out:
/// SubmitOptions::stop, RunOptions::stop, the submit(fn, stop) overloads, and the
/// std::stop_token a function given to to_thread() or call_host() may take (without it, a
/// cancel cannot ask such a function to stop: the awaiting task waits for it to return, or
/// resumes at once with ToThreadOptions::abandon_on_cancel). Everything else is the same.
/// Code that must build on both tests the macro:
///
/// @code
/// #if LOOPBRIDGE_HAS_STOP_TOKEN
///   options.stop = worker.get_stop_token();
/// #endif
/// @endcode

#include <version>

#if defined(__cpp_lib_jthread)
#include <stop_token>
/// 1: the standard library has std::stop_token, and loopbridge's parts that take one are built.
#define LOOPBRIDGE_HAS_STOP_TOKEN 1
#else
/// 0: no std::stop_token here; loopbridge's parts that take one are left out.
#define LOOPBRIDGE_HAS_STOP_TOKEN 0
#endif

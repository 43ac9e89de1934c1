#pragma once

#include <string_view>

namespace loopbridge {

/// The kernel interface Asio waits on for I/O and timers.
/**
 * Chosen when loopbridge is built: `epoll` by default, `io_uring` with the CMake option
 * LOOPBRIDGE_IO_URING=ON (Asio's BOOST_ASIO_HAS_IO_URING with epoll disabled, linking
 * liburing). The choice changes Asio's types, so it travels with the loopbridge targets as
 * public compile definitions: every translation unit that includes Asio through them agrees.
 * LoopHandle::backend() reports it. Where the kernel refuses io_uring (old kernels,
 * containers whose seccomp policy blocks io_uring_setup), constructing a BackgroundLoop
 * throws BackendUnavailable. docs/customise.md has the details.
 */
enum class IoBackend { epoll, io_uring };

/// "epoll" or "io_uring".
constexpr std::string_view to_string(IoBackend backend) noexcept {
  return backend == IoBackend::io_uring ? "io_uring" : "epoll";
}

}  // namespace loopbridge

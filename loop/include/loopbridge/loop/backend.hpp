#pragma once

#include <string_view>

namespace loopbridge {

/// The kernel interface Asio waits on for I/O and timers.
/**
 * Chosen when loopbridge is built. On Linux: `epoll` by default, `io_uring` with the CMake
 * option LOOPBRIDGE_IO_URING=ON (Asio's BOOST_ASIO_HAS_IO_URING with epoll disabled, linking
 * liburing). The choice changes Asio's types, so it travels with the loopbridge targets as
 * public compile definitions: every translation unit that includes Asio through them agrees.
 * LoopHandle::backend() reports it. Where the kernel refuses io_uring (old kernels,
 * containers whose seccomp policy blocks io_uring_setup), constructing a BackgroundLoop
 * throws BackendUnavailable. docs/customise.md has the details.
 *
 * Elsewhere Asio picks its own: `kqueue` on macOS and the BSDs, `iocp` (I/O completion
 * ports) on Windows. loopbridge is built and tested on Linux only: docs/portability.md says
 * what other systems get.
 */
enum class IoBackend { epoll, io_uring, kqueue, iocp };

/// "epoll", "io_uring", "kqueue" or "iocp".
constexpr std::string_view to_string(IoBackend backend) noexcept {
  switch (backend) {
    case IoBackend::epoll: return "epoll";
    case IoBackend::io_uring: return "io_uring";
    case IoBackend::kqueue: return "kqueue";
    case IoBackend::iocp: return "iocp";
  }
  return "unknown";
}

}  // namespace loopbridge

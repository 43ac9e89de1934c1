// liburing as Asio's io_uring backend must see it: every submission entry handed out with its
// tag cleared. Only the io_uring build (LOOPBRIDGE_IO_URING=ON) puts this directory on the
// include path, ahead of the system's, for loopbridge and for every target that links it.
//
// Why: Asio 1.26 (Boost 1.81) takes entries with io_uring_get_sqe() and tags only some of
// them. A cancel request goes out in a reused entry that still carries the tag of whatever
// operation used that slot before, so the kernel's answer to the cancel completes that other
// operation: a socket read elsewhere ends with end-of-file or ENOENT, and its real completion
// is later lost. Later Asio releases clear the tag in their own get_sqe(); clearing it here
// as well changes nothing there. Every Asio translation unit of a program must see this
// header (Asio's io_uring service is header-only code): link loopbridge::loop, or add this
// directory to the include path, in each target that includes Asio.

#pragma once
#pragma GCC system_header  // #include_next is a GCC/Clang extension (-Wpedantic)

#include_next <liburing.h>

static inline struct io_uring_sqe* loopbridge_io_uring_get_cleared_sqe(struct io_uring* ring) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe) io_uring_sqe_set_data(sqe, 0);
  return sqe;
}

#define io_uring_get_sqe loopbridge_io_uring_get_cleared_sqe
#define LOOPBRIDGE_LIBURING_TAGS_CLEARED 1  // checked by loopbridge's headers

#include <loopbridge/loop/errors.hpp>

#include <boost/asio/io_context.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>

#include <string>

#if !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && !defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_KQUEUE) && !defined(BOOST_ASIO_HAS_IOCP)
#error "loopbridge runs Asio on epoll or io_uring (Linux), kqueue (macOS, BSD) or IOCP (Windows)"
#endif

namespace loopbridge::detail {

void check_backend([[maybe_unused]] boost::asio::io_context& io) {
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
  // Asio sets up io_uring for the first timer or socket: do it now, so that a kernel or a
  // seccomp policy that refuses io_uring is an error here and not inside the loop. (epoll
  // is always there; opening its reactor early would only make every wake-up of an idle
  // loop go through it.)
  try {
    boost::asio::steady_timer probe(io);
  } catch (const boost::system::system_error& e) {
    throw BackendUnavailable(std::string("io_uring is unavailable: ") + e.code().message() +
                             " (the kernel or a seccomp policy refuses io_uring_setup; build loopbridge without "
                             "LOOPBRIDGE_IO_URING to run on epoll)");
  }
#endif
}

}  // namespace loopbridge::detail

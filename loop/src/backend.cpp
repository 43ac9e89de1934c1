#include <loopbridge/loop/detail/loop_core.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>

#include <string>

#if !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && !defined(BOOST_ASIO_HAS_EPOLL)
#error "loopbridge runs Asio on epoll or io_uring (Linux)"
#endif

namespace loopbridge::detail {

IoBackend LoopCore::backend() const noexcept {
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
  return IoBackend::io_uring;
#else
  return IoBackend::epoll;
#endif
}

void check_backend(boost::asio::io_context& io) {
  // Asio opens the backend (epoll_create, io_uring_setup) for the first timer or socket: do
  // it now, so that a refusal is an error here and not inside the loop.
  try {
    boost::asio::steady_timer probe(io);
  } catch (const boost::system::system_error& e) {
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
    throw BackendUnavailable(std::string("io_uring is unavailable: ") + e.what() +
                             " (the kernel or a seccomp policy refuses io_uring_setup; build loopbridge without "
                             "LOOPBRIDGE_IO_URING to run on epoll)");
#else
    throw BackendUnavailable(std::string("epoll is unavailable: ") + e.what());
#endif
  }
}

}  // namespace loopbridge::detail

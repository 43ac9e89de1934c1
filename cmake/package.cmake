# The Debian package libloopbridge-dev: what `cmake --install` puts in place (the headers, the
# static libraries, the CMake package files), under /usr. `cpack -G DEB` in the build folder
# makes it; the test deb.* (tests/package) builds a consumer against it.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libloopbridge-dev)
set(CPACK_PACKAGE_VENDOR "loopbridge")
set(CPACK_PACKAGE_CONTACT "loopbridge maintainers <loopbridge@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "C++20 library: synchronous programs using asynchronous Boost.Asio code")
set(CPACK_PACKAGE_DESCRIPTION
    "A BackgroundLoop owns a thread running a Boost.Asio io_context; host threads submit coroutines "
    "and callables to it and get futures back. Headers, static libraries and the CMake package "
    "(find_package(loopbridge CONFIG)).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
# What its users compile and link against: the Boost it was built with, or a newer one
# (Boost.Thread and Boost.Chrono for loopbridge::boost_future only).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libboost1.81-dev | libboost-dev (>= 1.81)")
if(LOOPBRIDGE_BOOST_FUTURE)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS
         ", libboost-thread1.81-dev | libboost-thread-dev (>= 1.81), libboost-chrono1.81-dev | libboost-chrono-dev (>= 1.81)")
endif()
if(LOOPBRIDGE_IO_URING)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", liburing-dev")
endif()
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
include(CPack)

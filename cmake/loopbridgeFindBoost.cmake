# Finds Boost 1.81 or newer with the given components (the headers always), for loopbridge's
# own build and for its installed package. Leaves loopbridge_BOOST_ERROR empty when found;
# otherwise sets it to a message that says what is missing: the build stops with it, the
# package gives it as the reason it was not found.
#
# 1.81 is the oldest Boost loopbridge is tested with. Older ones fail for a reason worth
# naming: Boost.Asio's per-operation cancellation (cancellation slots, the cancellation state
# of coroutines), which every cancel, deadline and stop of a task goes through, came in
# Boost 1.77; Debian 12's default libboost-dev is 1.74.
macro(loopbridge_find_boost)
  set(loopbridge_BOOST_ERROR "")
  find_package(Boost 1.81 CONFIG QUIET COMPONENTS headers ${ARGN})
  if(NOT Boost_FOUND)
    set(loopbridge_BOOST_ERROR "loopbridge needs Boost 1.81 or newer")
    if(Boost_VERSION AND Boost_VERSION VERSION_GREATER_EQUAL 1.81)
      string(REPLACE ";" ", " _loopbridge_components "${ARGN}")
      string(APPEND loopbridge_BOOST_ERROR " and found Boost ${Boost_VERSION} (${Boost_DIR}), but not all of its "
             "libraries: ${_loopbridge_components} (Debian: apt-get install libboost-thread${Boost_VERSION_MAJOR}."
             "${Boost_VERSION_MINOR}-dev libboost-chrono${Boost_VERSION_MAJOR}.${Boost_VERSION_MINOR}-dev).")
    else()
      if(Boost_CONSIDERED_VERSIONS)
        list(JOIN Boost_CONSIDERED_VERSIONS ", " _loopbridge_versions)
        string(APPEND loopbridge_BOOST_ERROR "; found only Boost ${_loopbridge_versions}")
      else()
        string(APPEND loopbridge_BOOST_ERROR "; found no Boost CMake package (BoostConfig.cmake)")
      endif()
      string(APPEND loopbridge_BOOST_ERROR
             ". Every cancel, deadline and stop of a task goes through Boost.Asio's per-operation "
             "cancellation, which needs Boost 1.81 or newer here (Asio gained it in Boost 1.77; 1.81 is "
             "the oldest release loopbridge is tested with). Debian 12: apt-get install libboost1.81-dev "
             "libboost-thread1.81-dev libboost-chrono1.81-dev (in place of libboost-dev, 1.74); "
             "elsewhere, point Boost_DIR or CMAKE_PREFIX_PATH at a newer Boost.")
    endif()
  endif()
endmacro()

# Which Boost.Asio loopbridge builds with: the system Boost's, or the headers in
# LOOPBRIDGE_ASIO_INCLUDE_DIR, put ahead of it for every target that links loopbridge
# (loop/CMakeLists.txt). Says which, and which way tasks start: detail/coroutines.hpp makes the
# same choice from the same range of releases, and the test "tasks start on the path the build
# announced" fails if the two disagree.
if(LOOPBRIDGE_ASIO_INCLUDE_DIR)
  set(_loopbridge_asio_dir "${LOOPBRIDGE_ASIO_INCLUDE_DIR}")
else()
  get_target_property(_loopbridge_asio_dir Boost::headers INTERFACE_INCLUDE_DIRECTORIES)
endif()
set(_loopbridge_asio_version_file "${_loopbridge_asio_dir}/boost/asio/version.hpp")
if(NOT EXISTS "${_loopbridge_asio_version_file}")
  message(FATAL_ERROR "${_loopbridge_asio_dir} holds no boost/asio/version.hpp: LOOPBRIDGE_ASIO_INCLUDE_DIR names "
                      "the folder that holds boost/asio/ (an Asio release's include folder)")
endif()
file(STRINGS "${_loopbridge_asio_version_file}" _loopbridge_asio_line REGEX "^#define BOOST_ASIO_VERSION [0-9]+")
string(REGEX MATCH "BOOST_ASIO_VERSION ([0-9]+)" _loopbridge_asio_line "${_loopbridge_asio_line}")
set(LOOPBRIDGE_ASIO_VERSION_NUMBER ${CMAKE_MATCH_1})
math(EXPR _loopbridge_asio_major "${LOOPBRIDGE_ASIO_VERSION_NUMBER} / 100000")
math(EXPR _loopbridge_asio_minor "${LOOPBRIDGE_ASIO_VERSION_NUMBER} / 100 % 1000")
math(EXPR _loopbridge_asio_patch "${LOOPBRIDGE_ASIO_VERSION_NUMBER} % 100")
set(LOOPBRIDGE_ASIO_VERSION "${_loopbridge_asio_major}.${_loopbridge_asio_minor}.${_loopbridge_asio_patch}")

if(LOOPBRIDGE_ASIO_VERSION_NUMBER LESS 102600)
  message(FATAL_ERROR "Boost.Asio ${LOOPBRIDGE_ASIO_VERSION} (${_loopbridge_asio_dir}) is older than 1.26 "
                      "(Boost 1.81), the oldest loopbridge builds with: it lacks the per-operation cancellation "
                      "every cancel, deadline and stop of a task goes through")
endif()
# The Asio releases whose internals the internals path was checked against: Asio 1.26 to 1.36
# (Boost 1.81 to 1.89). Outside them tasks start through co_spawn, at some cost in speed.
if(NOT LOOPBRIDGE_ASIO_INTERNALS)
  set(LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS 0)
  set(_loopbridge_task_path "co_spawn (LOOPBRIDGE_ASIO_INTERNALS is OFF)")
elseif(LOOPBRIDGE_ASIO_VERSION_NUMBER GREATER 103600)
  set(LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS 0)
  set(_loopbridge_task_path "co_spawn: Asio ${LOOPBRIDGE_ASIO_VERSION} is newer than the releases the internals "
                            "path was checked against (1.26 to 1.36)")
else()
  set(LOOPBRIDGE_TASKS_ON_ASIO_INTERNALS 1)
  set(_loopbridge_task_path "Asio's internals")
endif()
message(STATUS "loopbridge: Boost.Asio ${LOOPBRIDGE_ASIO_VERSION} from ${_loopbridge_asio_dir}; "
               "tasks start through ${_loopbridge_task_path}")

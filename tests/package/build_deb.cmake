# Makes the Debian package of the loopbridge build in BUILD (cpack, into OUT), checks its name
# and contents, and unpacks it into ROOT as dpkg would install it.
# cmake -DBUILD=<build folder> -DOUT=<folder> -DROOT=<folder> -P build_deb.cmake
file(REMOVE_RECURSE ${OUT} ${ROOT})
execute_process(COMMAND cpack --config ${BUILD}/CPackConfig.cmake -B ${OUT} COMMAND_ERROR_IS_FATAL ANY)
file(GLOB debs ${OUT}/*.deb)
list(LENGTH debs count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one .deb in ${OUT}, found: ${debs}")
endif()
execute_process(COMMAND dpkg-deb --field ${debs} Package Depends COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND dpkg-deb --field ${debs} Package OUTPUT_VARIABLE name OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)
if(NOT name STREQUAL "libloopbridge-dev")
  message(FATAL_ERROR "the package is named '${name}', not libloopbridge-dev")
endif()
execute_process(COMMAND dpkg-deb -x ${debs} ${ROOT} COMMAND_ERROR_IS_FATAL ANY)
# What the package is for: headers, static libraries, the CMake package.
foreach(file IN ITEMS include/loopbridge.hpp lib/libloopbridge_loop.a lib/libloopbridge_bridge.a lib/loopbridgeConfig.cmake)
  file(GLOB_RECURSE found ${ROOT}/usr/${file})  # anywhere under usr/include or usr/lib
  if(NOT found)
    message(FATAL_ERROR "the package has no ${file} under usr/")
  endif()
endforeach()
message(STATUS "unpacked ${debs} into ${ROOT}")

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LOOPBRIDGE_CONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/loopbridge)

set(loopbridge_installed_targets loopbridge_loop loopbridge_bridge loopbridge)
set(loopbridge_excluded_headers)
if(LOOPBRIDGE_BOOST_FUTURE)
  list(APPEND loopbridge_installed_targets loopbridge_boost_future)
else()
  set(loopbridge_excluded_headers PATTERN boost_future.hpp EXCLUDE)
endif()
install(TARGETS ${loopbridge_installed_targets}
  EXPORT loopbridgeTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY loop/include/ bridge/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} ${loopbridge_excluded_headers})
install(EXPORT loopbridgeTargets NAMESPACE loopbridge:: DESTINATION ${LOOPBRIDGE_CONFIG_DIR})

configure_package_config_file(cmake/loopbridgeConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfig.cmake
  INSTALL_DESTINATION ${LOOPBRIDGE_CONFIG_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfigVersion.cmake
  cmake/loopbridgeFindBoost.cmake
  DESTINATION ${LOOPBRIDGE_CONFIG_DIR})

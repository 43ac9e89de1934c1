include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LOOPBRIDGE_CONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/loopbridge)

install(TARGETS loopbridge_loop loopbridge_bridge loopbridge
  EXPORT loopbridgeTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY loop/include/ bridge/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT loopbridgeTargets NAMESPACE loopbridge:: DESTINATION ${LOOPBRIDGE_CONFIG_DIR})

configure_package_config_file(cmake/loopbridgeConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfig.cmake
  INSTALL_DESTINATION ${LOOPBRIDGE_CONFIG_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/loopbridgeConfigVersion.cmake
  DESTINATION ${LOOPBRIDGE_CONFIG_DIR})

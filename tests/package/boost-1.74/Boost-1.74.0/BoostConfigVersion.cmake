# Boost 1.74's version file (as Debian 12's libboost-dev has it), without the rest of that Boost:
# enough for a configure to find it and refuse it for its version.
set(PACKAGE_VERSION 1.74.0)
if(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()

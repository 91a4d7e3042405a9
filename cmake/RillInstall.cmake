# RillInstall.cmake - what `cmake --install` puts where (GNUInstallDirs), and
# how other projects find it: rill.pc for pkg-config, rillConfig.cmake with
# the targets rill::rill (librill.so.1) and rill::cpp (rill.hpp, C++20), and
# Debian packages through CPack (librill1, librill-dev).
include(CMakePackageConfigHelpers)

# Components: `runtime` is the shared library itself, `dev` what building
# against it needs (headers, the .so link, pkg-config and CMake files).
install(TARGETS rill rill_cpp EXPORT rillTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/core/include/rill.h ${PROJECT_SOURCE_DIR}/bindings/cpp/rill.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

set(RILL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rill)
install(EXPORT rillTargets NAMESPACE rill:: DESTINATION ${RILL_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/rillConfig.cmake.in
  ${PROJECT_BINARY_DIR}/rillConfig.cmake INSTALL_DESTINATION ${RILL_CMAKE_DIR})
# 1.x promises ABI compatibility: any 1.y satisfies a request for 1.x (x <= y).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rillConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rillConfig.cmake ${PROJECT_BINARY_DIR}/rillConfigVersion.cmake
  DESTINATION ${RILL_CMAKE_DIR} COMPONENT dev)

# pkg-config: prefix found from the .pc file's own place (${pcfiledir}), so
# `cmake --install --prefix ANY` and a moved tree both work.
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(RILL_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(RILL_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(RILL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH RILL_PC_UP "/r/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/r")
  set(RILL_PC_PREFIX "\${pcfiledir}/${RILL_PC_UP}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/rill.pc.in ${PROJECT_BINARY_DIR}/rill.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/rill.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT dev)

# Debian packages: `cpack -G DEB` in the build tree (or `cmake --build build
# --target package`) gives librill1_<v>_<arch>.deb and librill-dev_<v>_<arch>.deb,
# installable with `apt install ./librill1_*.deb ./librill-dev_*.deb`.
set(CPACK_PACKAGE_NAME rill)
set(CPACK_PACKAGE_VENDOR "the rill engineers")
set(CPACK_PACKAGE_CONTACT "rill engineers <rill@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "asyncio-style event loop in C on libev")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME librill1)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_STRIP_FILES ON)
file(WRITE ${PROJECT_BINARY_DIR}/debian/triggers "activate-noawait ldconfig\n")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/debian/triggers)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "asyncio-style event loop in C on libev - shared library\n librill.so.1: loop, futures, tasks, gather, timeouts, task groups and\n stackful C coroutines behind a stable opaque-handle C ABI.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME librill-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "librill1 (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "asyncio-style event loop in C on libev - development files\n rill.h (C99), rill.hpp (C++20 wrapper), pkg-config file and CMake package\n (find_package(rill): rill::rill, rill::cpp).")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "")
set(CPACK_SET_DESTDIR OFF)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)

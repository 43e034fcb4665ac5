# Install rules: headers, the libraries, a CMake package (pk::pk,
# pk::fakes, pk::cassettes, pk::mock) and a pkg-config file for each
# library. Included from the top-level CMakeLists.txt after the libraries
# are defined.
if(NOT PK_INSTALL)
  return()
endif()

include(CMakePackageConfigHelpers)

set(PK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/processkit)

# pk::cassettes is always built, so it shares the main export set. Its
# private libyaml and nettle are imported targets (PkgConfig::YAML,
# PkgConfig::NETTLE) that a static archive's link interface names: the
# package config creates them before loading the targets (see
# PK_CASSETTES_STATIC below).
install(TARGETS pk pk_fakes pk_cassettes EXPORT processkit-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime
          NAMELINK_COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/lib/include/pk
                  ${PROJECT_SOURCE_DIR}/fakes/include/pk
                  ${PROJECT_SOURCE_DIR}/cassettes/include/pk
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT Development
  FILES_MATCHING PATTERN "*.h")

# pk::mock needs cmocka: its own export set, loaded by the package config
# only when it was installed (and then cmocka is looked up too).
if(TARGET pk_mock)
  install(TARGETS pk_mock EXPORT processkit-mock-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime
            NAMELINK_COMPONENT Development)
  install(EXPORT processkit-mock-targets
    NAMESPACE pk::
    FILE processkit-mock-targets.cmake
    DESTINATION ${PK_CMAKE_DIR}
    COMPONENT Development)
endif()

install(EXPORT processkit-targets
  NAMESPACE pk::
  FILE processkit-targets.cmake
  DESTINATION ${PK_CMAKE_DIR}
  COMPONENT Development)

# pk_cassette_dir(target [DIR dir]), the helper for pk/cassette_cmocka.h;
# the package config includes it when it was installed.
if(EXISTS ${PROJECT_SOURCE_DIR}/cmake/processkit-cassettes.cmake)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/processkit-cassettes.cmake
    DESTINATION ${PK_CMAKE_DIR}
    COMPONENT Development)
endif()

# A static pk::cassettes needs libyaml and nettle in the consumer's link;
# a shared one carries them itself, so the package config looks them up
# only for a static archive.
get_target_property(_pk_type pk_cassettes TYPE)
if(_pk_type STREQUAL "STATIC_LIBRARY")
  set(PK_CASSETTES_STATIC TRUE)
else()
  set(PK_CASSETTES_STATIC FALSE)
endif()
unset(_pk_type)
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/processkit-config.cmake.in
  ${PROJECT_BINARY_DIR}/processkit-config.cmake
  INSTALL_DESTINATION ${PK_CMAKE_DIR})
# 0.x: a minor release may break the API, so only the same minor matches.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/processkit-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/processkit-config.cmake
  ${PROJECT_BINARY_DIR}/processkit-config-version.cmake
  DESTINATION ${PK_CMAKE_DIR}
  COMPONENT Development)

# One .pc per installed library, so a Makefile user links with
# `pkg-config --libs [--static] processkit-mock` and gets the order right:
#   processkit        Requires: libuv (pk.h includes uv.h)
#   processkit-fakes  Requires: processkit (same version: it uses pk__*)
#   processkit-mock   Requires: processkit-fakes, cmocka (pk/mock.h
#                     includes cmocka.h)
#   processkit-cassettes  Requires: processkit-fakes; Requires.private:
#                     yaml-0.1 nettle (only a static link needs them)
# Each is filled now except for the prefix, which is written at install
# time so the file names the prefix actually installed to
# (`cmake --install --prefix DIR`, CPack), not the one configured.
set(PK_PC_VERSION ${PROJECT_VERSION})
set(PK_PC_PREFIX "@PK_PC_PREFIX@") # kept for the install-time pass
foreach(_pk_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_pk_dir}}")
    set(PK_PC_${_pk_dir} "${CMAKE_INSTALL_${_pk_dir}}")
  elseif(_pk_dir STREQUAL "LIBDIR")
    set(PK_PC_${_pk_dir} "\${exec_prefix}/${CMAKE_INSTALL_${_pk_dir}}")
  else()
    set(PK_PC_${_pk_dir} "\${prefix}/${CMAKE_INSTALL_${_pk_dir}}")
  endif()
endforeach()
unset(_pk_dir)
set(_pk_pcs processkit processkit-fakes processkit-cassettes)
if(TARGET pk_mock)
  list(APPEND _pk_pcs processkit-mock)
endif()
foreach(_pk_pc ${_pk_pcs})
  configure_file(${PROJECT_SOURCE_DIR}/cmake/${_pk_pc}.pc.in
    ${PROJECT_BINARY_DIR}/${_pk_pc}.pc.in @ONLY)
  install(CODE "
    set(PK_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    configure_file(\"${PROJECT_BINARY_DIR}/${_pk_pc}.pc.in\"
                   \"${PROJECT_BINARY_DIR}/${_pk_pc}.pc\" @ONLY)"
    COMPONENT Development)
  install(FILES ${PROJECT_BINARY_DIR}/${_pk_pc}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
    COMPONENT Development)
endforeach()
unset(_pk_pc)
unset(_pk_pcs)

# SPDX-License-Identifier: MIT
# Install rules, one component per Debian package (see TetherPackaging.cmake):
#   tetherd   tetherd, tether-cat, the systemd unit, /etc/tether/tetherd.json,
#             /usr/share/tether/prometheus/tetherd-rules.yml
#   server    tether-server, its systemd unit and /etc/tether/tether-server.env,
#             /usr/share/tether/prometheus/tether-server-rules.yml and
#             /usr/share/tether/grafana/tether.json
#             (the server runs on other machines than the gateways, so it is a
#             package of its own)
#   dev       the static libraries, the public headers, the CMake package
#             (find_package(tether) -> tether::tether ...) and tether.pc
# The state directories /var/lib/tether and /var/lib/tether-server are not
# shipped: each unit's StateDirectory= (mode 0700) creates its own for the
# DynamicUser it runs as.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Multiarch library directory (lib/x86_64-linux-gnu, lib/arm-linux-gnueabihf)
# whatever the prefix, so libtether-dev of several architectures can be
# installed side by side and a cross build's find_package finds its own.
if(CMAKE_LIBRARY_ARCHITECTURE)
    set(TETHER_INSTALL_LIBDIR_DEFAULT "lib/${CMAKE_LIBRARY_ARCHITECTURE}")
else()
    set(TETHER_INSTALL_LIBDIR_DEFAULT "${CMAKE_INSTALL_LIBDIR}")
endif()
set(TETHER_INSTALL_LIBDIR "${TETHER_INSTALL_LIBDIR_DEFAULT}" CACHE STRING
    "Where the static libraries, tether.pc and the CMake package go (relative to the prefix)")
set(TETHER_INSTALL_CMAKEDIR "${TETHER_INSTALL_LIBDIR}/cmake/tether")

# The configuration and the unit sit where Debian expects them when the prefix
# is /usr (as make deb installs), else inside the prefix. Decided at install
# time, because cpack installs with its own prefix (CPACK_SET_DESTDIR) whatever
# the build was configured with.
set(TETHER_INSTALL_DIRS_CODE [[
    if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR CMAKE_INSTALL_PREFIX STREQUAL "/usr/")
        set(TETHER_SYSTEMD_UNIT_DIR "/lib/systemd/system")
        set(TETHER_CONFIG_DIR "/etc/tether")
    else()
        set(TETHER_SYSTEMD_UNIT_DIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
        set(TETHER_CONFIG_DIR "${CMAKE_INSTALL_PREFIX}/etc/tether")
    endif()
    # The destinations below are written "/${...}" so install() takes them as
    # absolute; strip the variables' own leading slash.
    string(REGEX REPLACE "^/+" "" TETHER_SYSTEMD_UNIT_DIR "${TETHER_SYSTEMD_UNIT_DIR}")
    string(REGEX REPLACE "^/+" "" TETHER_CONFIG_DIR "${TETHER_CONFIG_DIR}")
]])
# Each package is installed on its own (CPACK_DEB_COMPONENT_INSTALL), so each
# component that ships a unit computes the directories itself.
install(CODE "${TETHER_INSTALL_DIRS_CODE}" COMPONENT tetherd)
install(CODE "${TETHER_INSTALL_DIRS_CODE}" COMPONENT server)

# tetherd package.
foreach(app tetherd tether-cat tetherctl)
    if(TARGET ${app})
        install(TARGETS ${app} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tetherd)
    endif()
endforeach()
if(TARGET tetherd)
    install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/tetherd.service
        DESTINATION "/\${TETHER_SYSTEMD_UNIT_DIR}" COMPONENT tetherd)
    install(FILES ${PROJECT_SOURCE_DIR}/packaging/tetherd.example.json
        DESTINATION "/\${TETHER_CONFIG_DIR}" RENAME tetherd.json COMPONENT tetherd)
endif()
# Prometheus alert rules for tetherd's metrics (docs/METRICS.md).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/prometheus/tetherd-rules.yml
    DESTINATION ${CMAKE_INSTALL_DATADIR}/tether/prometheus COMPONENT tetherd)

# tether-server package.
if(TARGET tether-server)
    install(TARGETS tether-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
    install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/tether-server.service
        DESTINATION "/\${TETHER_SYSTEMD_UNIT_DIR}" COMPONENT server)
    install(FILES ${PROJECT_SOURCE_DIR}/packaging/tether-server.env
        DESTINATION "/\${TETHER_CONFIG_DIR}" COMPONENT server)
endif()
# The server's alert rules, and the Grafana dashboard of both programs (it goes
# where Prometheus and Grafana run, beside the servers, not on the gateways).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/prometheus/tether-server-rules.yml
    DESTINATION ${CMAKE_INSTALL_DATADIR}/tether/prometheus COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/grafana/tether.json
    DESTINATION ${CMAKE_INSTALL_DATADIR}/tether/grafana COMPONENT server)

# libtether-dev package.
set(TETHER_EXPORTED_TARGETS tether_options tether_core)
foreach(library tether_net tether_client tether_port_posix tether)
    if(TARGET ${library})
        list(APPEND TETHER_EXPORTED_TARGETS ${library})
    endif()
endforeach()
set_target_properties(tether_options PROPERTIES EXPORT_NAME options)
set_target_properties(tether_core PROPERTIES EXPORT_NAME core)
if(TARGET tether_net)
    set_target_properties(tether_net PROPERTIES EXPORT_NAME net)
endif()
if(TARGET tether)
    set_target_properties(tether_client PROPERTIES EXPORT_NAME client)
    set_target_properties(tether PROPERTIES EXPORT_NAME tether)
endif()
set_target_properties(tether_port_posix PROPERTIES EXPORT_NAME port_posix)

install(TARGETS ${TETHER_EXPORTED_TARGETS} EXPORT tetherTargets
    ARCHIVE DESTINATION ${TETHER_INSTALL_LIBDIR} COMPONENT dev
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tether
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
    FILES_MATCHING PATTERN "*.h")
install(EXPORT tetherTargets NAMESPACE tether::
    DESTINATION ${TETHER_INSTALL_CMAKEDIR} COMPONENT dev)

configure_package_config_file(${PROJECT_SOURCE_DIR}/packaging/cmake/tetherConfig.cmake.in
    ${PROJECT_BINARY_DIR}/packaging/tetherConfig.cmake
    INSTALL_DESTINATION ${TETHER_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/packaging/tetherConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
    ${PROJECT_BINARY_DIR}/packaging/tetherConfig.cmake
    ${PROJECT_BINARY_DIR}/packaging/tetherConfigVersion.cmake
    ${PROJECT_SOURCE_DIR}/cmake/TetherFindDependencies.cmake
    DESTINATION ${TETHER_INSTALL_CMAKEDIR} COMPONENT dev)

# tether.pc locates the prefix from its own directory (${pcfiledir}), so the
# file stays right in a sysroot or an unpacked package.
file(RELATIVE_PATH TETHER_PC_PREFIX_FROM_PCFILEDIR
    "/prefix/${TETHER_INSTALL_LIBDIR}/pkgconfig" "/prefix")
set(TETHER_PC_CFLAGS "")
if(TETHER_EMBEDDED)
    set(TETHER_PC_CFLAGS " -DTETHER_EMBEDDED=1")
endif()
configure_file(${PROJECT_SOURCE_DIR}/packaging/pkgconfig/tether.pc.in
    ${PROJECT_BINARY_DIR}/packaging/tether.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/tether.pc
    DESTINATION ${TETHER_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

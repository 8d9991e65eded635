# SPDX-License-Identifier: MIT
# Debian packages through CPack (make deb; see TetherInstall.cmake for what
# each component holds):
#   tetherd          the daemon, tether-cat, unit, /etc/tether/tetherd.json
#   tether-server    the server, its unit, /etc/tether/tether-server.env
#   libtether-dev    static libraries, headers, CMake package, tether.pc
# Runtime Depends are computed by dpkg-shlibdeps from the binaries (dpkg-dev);
# the architecture follows the toolchain, so build/armhf and build/arm64 give
# armhf and arm64 packages.
# The packages' maintainer and home page: this is the one place (the control
# files, the copyright files and the checks in tests/integration take them
# from here; packaging/debian/changelog signs each entry with the maintainer).
set(TETHER_PACKAGE_MAINTAINER "tether maintainers <maintainers@tether-project.org>")
set(TETHER_PACKAGE_HOMEPAGE "https://tether-project.org")

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "tether")
set(CPACK_PACKAGE_VENDOR "tether")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${TETHER_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "WebSocket telemetry link for embedded Linux gateways")
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")

# Install with DESTDIR into the staging tree and the prefix /usr, so the
# absolute /etc and /lib/systemd paths land in the package, not on this machine.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")

# Executables are stripped (install(TARGETS) strips no archive).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL tetherd server dev)
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${TETHER_PACKAGE_HOMEPAGE}")
# The source package the changelog (packaging/debian/changelog) is about.
set(CPACK_DEBIAN_PACKAGE_SOURCE "tether")

if(CMAKE_CROSSCOMPILING)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
        set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "arm64")
    elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
        set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "armhf")
    else()
        message(WARNING "tether: no Debian architecture known for ${CMAKE_SYSTEM_PROCESSOR}")
    endif()
    # dpkg-shlibdeps finds the target's libraries in its multiarch directory.
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}")
endif()

set(CPACK_DEBIAN_TETHERD_PACKAGE_NAME "tetherd")
set(CPACK_DEBIAN_TETHERD_PACKAGE_SECTION "net")
set(CPACK_COMPONENT_TETHERD_DESCRIPTION
    "tether telemetry link daemon
 tetherd keeps a gateway's tether.v1 WebSocket link to the telemetry server
 alive through network faults, with an in-memory outbox and an on-disk spool.
 The service is not enabled or started on installation: put the server's
 URL in /etc/tether/tetherd.json and the device's token in
 /etc/tether/token, then: systemctl enable --now tetherd.
 Also ships tether-cat, a command-line client.")
# postinst creates the static group "tether" of the input socket (addgroup).
set(CPACK_DEBIAN_TETHERD_PACKAGE_DEPENDS "adduser")
# /etc/tether/tetherd.json is a conffile: an upgrade keeps the local edits.
file(WRITE "${PROJECT_BINARY_DIR}/packaging/tetherd/conffiles" "/etc/tether/tetherd.json\n")
# Maintainer scripts (packaging/debian/): daemon-reload, restart on upgrade if
# running, stop on remove, state purged on purge; nothing enabled or started.
foreach(script postinst prerm postrm)
    configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/tetherd.${script}
                   ${PROJECT_BINARY_DIR}/packaging/tetherd/${script} COPYONLY)
    configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/tether-server.${script}
                   ${PROJECT_BINARY_DIR}/packaging/server/${script} COPYONLY)
endforeach()
set(CPACK_DEBIAN_TETHERD_PACKAGE_CONTROL_EXTRA
    "${PROJECT_BINARY_DIR}/packaging/tetherd/conffiles"
    "${PROJECT_BINARY_DIR}/packaging/tetherd/postinst"
    "${PROJECT_BINARY_DIR}/packaging/tetherd/prerm"
    "${PROJECT_BINARY_DIR}/packaging/tetherd/postrm")
set(CPACK_DEBIAN_TETHERD_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME "tether-server")
set(CPACK_COMPONENT_SERVER_DESCRIPTION
    "tether.v1 telemetry server
 tether-server accepts tether.v1 links (ws:// and wss://) from tetherd and
 tether-cat and keeps the resume state of each session on disk, or in Redis
 shared by many instances. Put the device tokens in
 /etc/tether/tether-server.tokens and the admin token in
 /etc/tether/tether-server.admin-token (both root-only), choose the store in
 /etc/tether/tether-server.env, then: systemctl enable --now tether-server.
 The service is not enabled or started on installation.")
# /etc/tether/tether-server.env is a conffile: an upgrade keeps the local edits.
file(WRITE "${PROJECT_BINARY_DIR}/packaging/server/conffiles" "/etc/tether/tether-server.env\n")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    "${PROJECT_BINARY_DIR}/packaging/server/conffiles"
    "${PROJECT_BINARY_DIR}/packaging/server/postinst"
    "${PROJECT_BINARY_DIR}/packaging/server/prerm"
    "${PROJECT_BINARY_DIR}/packaging/server/postrm")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME "libtether-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION "libdevel")
# Static libraries: the consumer links mbedTLS, wslay and cJSON itself.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libmbedtls-dev, libwslay-dev, libcjson-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "tether client library (static) and headers
 libtether: the tether.v1 WebSocket client link for embedded Linux (C++17,
 no exceptions or RTTI needed). Use find_package(tether) and link
 tether::tether, or pkg-config --cflags --libs tether.")

# copyright, changelog.gz and README.md in /usr/share/doc/<package>.
include(TetherPackageDocs)

include(CPack)

# SPDX-License-Identifier: MIT
# Finds mbedTLS, wslay and cJSON and wraps each in an imported target
# (tether_dep_mbedcrypto, tether_dep_mbedx509, tether_dep_mbedtls,
# tether_dep_wslay, tether_dep_cjson). Debian ships mbedTLS 2.28 and wslay
# without CMake or pkg-config files, so they are found by header and library
# name. Shared by the build (TetherDependencies.cmake) and, installed next to
# tetherConfig.cmake, by every find_package(tether): the exported static
# libraries name these targets in their link interface, so a consumer resolves
# them through the same search. Sets TETHER_DEPENDENCIES_MISSING to the names
# of the libraries not found (empty when all were). Safe to include twice.
set(TETHER_DEPENDENCIES_MISSING "")

# Further arguments are fallback library file names.
function(tether_import_library target header library)
    if(TARGET ${target})
        return()
    endif()
    find_path(${target}_INCLUDE_DIR ${header})
    find_library(${target}_LIBRARY NAMES ${library} ${ARGN})
    if(NOT ${target}_INCLUDE_DIR OR NOT ${target}_LIBRARY)
        set(TETHER_DEPENDENCIES_MISSING "${TETHER_DEPENDENCIES_MISSING} ${library}" PARENT_SCOPE)
        return()
    endif()
    add_library(${target} UNKNOWN IMPORTED GLOBAL)
    set_target_properties(${target} PROPERTIES
        IMPORTED_LOCATION "${${target}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${${target}_INCLUDE_DIR}")
endfunction()

tether_import_library(tether_dep_mbedcrypto mbedtls/sha1.h mbedcrypto)
tether_import_library(tether_dep_mbedx509 mbedtls/x509_crt.h mbedx509)
tether_import_library(tether_dep_mbedtls mbedtls/ssl.h mbedtls)
# libwslay-dev is not Multi-Arch: same, so a cross build gets the target's
# runtime libwslay1:<arch> (linked by its soname) and the host's headers, which
# hold nothing architecture-specific (see tools/install-deps).
tether_import_library(tether_dep_wslay wslay/wslay.h wslay libwslay.so.1)
tether_import_library(tether_dep_cjson cjson/cJSON.h cjson)
if(TARGET tether_dep_mbedx509 AND TARGET tether_dep_mbedcrypto)
    set_property(TARGET tether_dep_mbedx509 PROPERTY INTERFACE_LINK_LIBRARIES tether_dep_mbedcrypto)
endif()
if(TARGET tether_dep_mbedtls AND TARGET tether_dep_mbedx509)
    set_property(TARGET tether_dep_mbedtls PROPERTY INTERFACE_LINK_LIBRARIES tether_dep_mbedx509)
endif()

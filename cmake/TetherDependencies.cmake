# Debian ships mbedTLS 2.28 and wslay without CMake or pkg-config files, so
# they are found by header and library name and wrapped in imported targets.
# Further arguments are fallback library file names.
function(tether_import_library target header library)
    find_path(${target}_INCLUDE_DIR ${header})
    find_library(${target}_LIBRARY NAMES ${library} ${ARGN})
    if(NOT ${target}_INCLUDE_DIR OR NOT ${target}_LIBRARY)
        message(FATAL_ERROR "tether: ${library} not found (header ${header}); run 'make deps'")
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
set_property(TARGET tether_dep_mbedx509 PROPERTY INTERFACE_LINK_LIBRARIES tether_dep_mbedcrypto)
set_property(TARGET tether_dep_mbedtls PROPERTY INTERFACE_LINK_LIBRARIES tether_dep_mbedx509)

if(TETHER_BUILD_TESTS)
    find_path(CPPUTEST_INCLUDE_DIR CppUTest/TestHarness.h)
    find_library(CPPUTEST_LIBRARY CppUTest)
    find_library(CPPUTEST_EXT_LIBRARY CppUTestExt)
    if(NOT CPPUTEST_INCLUDE_DIR OR NOT CPPUTEST_LIBRARY OR NOT CPPUTEST_EXT_LIBRARY)
        message(FATAL_ERROR "tether: CppUTest not found; run 'make deps'")
    endif()
    add_library(tether_dep_cpputest INTERFACE)
    target_include_directories(tether_dep_cpputest SYSTEM INTERFACE ${CPPUTEST_INCLUDE_DIR})
    target_link_libraries(tether_dep_cpputest INTERFACE ${CPPUTEST_LIBRARY} ${CPPUTEST_EXT_LIBRARY})
endif()

# SPDX-License-Identifier: MIT
# The libraries libtether links: one search, shared with installed consumers.
include(${CMAKE_CURRENT_LIST_DIR}/TetherFindDependencies.cmake)
if(TETHER_DEPENDENCIES_MISSING)
    message(FATAL_ERROR "tether: not found:${TETHER_DEPENDENCIES_MISSING}; run 'make deps'")
endif()

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

# SPDX-License-Identifier: MIT
# /usr/share/doc/<package>/ of every Debian package (included by
# TetherPackaging.cmake, which names the packages and the maintainer):
#   copyright             machine-readable (DEP-5), from packaging/debian/copyright.in
#   changelog.gz          packaging/debian/changelog, gzip -9n at build time (no
#                         name, no time stamp: the same bytes on every build)
#   README.md             the project's README
# The packages are native (their version is PROJECT_VERSION, no Debian
# revision), so the Debian-format changelog is changelog.gz, as Debian policy
# 12.7 has it for native packages (lintian: wrong-name-for-changelog-of-native-package).
find_program(TETHER_GZIP gzip)
if(NOT TETHER_GZIP)
    message(FATAL_ERROR "tether: gzip not found (the packages' changelog.gz)")
endif()

set(tether_docs_dir "${PROJECT_BINARY_DIR}/packaging/doc")
set(tether_changelog "${PROJECT_SOURCE_DIR}/packaging/debian/changelog")
add_custom_command(OUTPUT "${tether_docs_dir}/changelog.gz"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${tether_docs_dir}"
    COMMAND ${CMAKE_COMMAND} -DGZIP=${TETHER_GZIP} -DIN=${tether_changelog}
        -DOUT=${tether_docs_dir}/changelog.gz -P ${CMAKE_CURRENT_LIST_DIR}/TetherGzip.cmake
    DEPENDS "${tether_changelog}" "${CMAKE_CURRENT_LIST_DIR}/TetherGzip.cmake"
    COMMENT "Compressing the Debian changelog"
    VERBATIM)
add_custom_target(tether_package_docs ALL DEPENDS "${tether_docs_dir}/changelog.gz")

# What each package's copyright says about the libraries it does not contain.
set(tether_shared_libraries_note "The programs link mbedTLS (Apache-2.0), wslay (MIT) and
 cJSON (MIT) as shared libraries from their own Debian packages, which carry
 their own copyright files.")
set(tether_copyright_comment_tetherd "${tether_shared_libraries_note}")
set(tether_copyright_comment_server "${tether_shared_libraries_note}
 tether-server also links hiredis (BSD-3-Clause) the same way.")
set(tether_copyright_comment_dev "The static libraries hold only tether's own code.
 They do not contain mbedTLS (Apache-2.0), wslay (MIT) or cJSON (MIT): a
 program that links libtether links those libraries itself (this package
 depends on their -dev packages), under their own licences.")

foreach(component tetherd server dev)
    string(TOUPPER "${component}" upper)
    set(package "${CPACK_DEBIAN_${upper}_PACKAGE_NAME}")
    set(TETHER_PACKAGE_COPYRIGHT_COMMENT "${tether_copyright_comment_${component}}")
    configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/copyright.in"
        "${tether_docs_dir}/${component}/copyright" @ONLY)
    install(FILES
        "${tether_docs_dir}/${component}/copyright"
        "${tether_docs_dir}/changelog.gz"
        "${PROJECT_SOURCE_DIR}/README.md"
        DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${package}" COMPONENT ${component})
endforeach()

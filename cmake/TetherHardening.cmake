# SPDX-License-Identifier: MIT
# Hardening of everything this project builds, the packaged programs and the
# static libraries of libtether-dev included: what Debian's dpkg-buildflags
# gives with DEB_BUILD_MAINT_OPTIONS=hardening=+all (stack protector strong,
# _FORTIFY_SOURCE=2, -Werror=format-security, full RELRO with BIND_NOW, PIE),
# on tether::options so that every target, whatever the toolchain (host, the
# ARM toolchains in toolchains/), gets it and a consumer's flags stay its own
# (BUILD_INTERFACE only). tests/integration/test_packages.py checks the
# packaged ELF files (readelf) and lintian's hardening tags.
#
# -DTETHER_HARDENING=OFF turns it off (a toolchain whose C library has no
# stack protector, or a size measurement without it).
option(TETHER_HARDENING
    "Build with stack protector, _FORTIFY_SOURCE=2, full RELRO, BIND_NOW and PIE" ON)

if(TETHER_HARDENING)
    set(tether_target_type "$<TARGET_PROPERTY:TYPE>")
    set(tether_is_executable "$<STREQUAL:${tether_target_type},EXECUTABLE>")
    # Static libraries end up inside executables, so they are PIE code too;
    # shared libraries (the bench's LD_PRELOAD counter) keep their -fPIC.
    set(tether_is_pie_code
        "$<OR:${tether_is_executable},$<STREQUAL:${tether_target_type},STATIC_LIBRARY>,$<STREQUAL:${tether_target_type},OBJECT_LIBRARY>>")
    target_compile_options(tether_options INTERFACE
        $<BUILD_INTERFACE:-fstack-protector-strong>
        $<BUILD_INTERFACE:-Wformat>
        $<BUILD_INTERFACE:-Werror=format-security>
        $<BUILD_INTERFACE:$<${tether_is_pie_code}:-fPIE>>)
    # _FORTIFY_SOURCE needs an optimised build (glibc warns, and -Werror fails,
    # at -O0: Debug, coverage) and is not combined with the sanitizers, which
    # intercept the same functions. -U first: some compilers predefine it.
    set(tether_optimised
        "$<OR:$<CONFIG:Release>,$<CONFIG:RelWithDebInfo>,$<CONFIG:MinSizeRel>>")
    if(NOT TETHER_SANITIZE AND NOT TETHER_FUZZ AND NOT TETHER_COVERAGE)
        target_compile_options(tether_options INTERFACE
            "$<BUILD_INTERFACE:$<${tether_optimised}:-U_FORTIFY_SOURCE;-D_FORTIFY_SOURCE=2>>")
    endif()
    # Link options reach what is linked (executables, shared libraries), not
    # archives.
    target_link_options(tether_options INTERFACE
        $<BUILD_INTERFACE:-Wl,-z,relro,-z,now>
        $<BUILD_INTERFACE:$<${tether_is_executable}:-pie>>)
endif()

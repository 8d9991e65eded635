# SPDX-License-Identifier: MIT
# Compile options shared by every tether target. Targets link tether::options
# instead of the build setting global flags, so a consumer's flags stay untouched.
# tether::options is exported with the libraries (find_package(tether)); only
# the C++17 requirement and the TETHER_EMBEDDED definition reach a consumer,
# the warnings, -Werror and coverage flags are BUILD_INTERFACE only.
add_library(tether_options INTERFACE)
add_library(tether::options ALIAS tether_options)

target_compile_features(tether_options INTERFACE cxx_std_17)
target_compile_options(tether_options INTERFACE
    $<BUILD_INTERFACE:$<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wshadow -Wconversion
                       -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast>>
    $<BUILD_INTERFACE:$<$<COMPILE_LANGUAGE:C>:-Wall -Wextra>>)
# 64-bit off_t, ino_t and directory offsets on 32-bit glibc targets (armhf):
# without it stat() and readdir() fail with EOVERFLOW on large files, large
# inode numbers and 64-bit directory hashes (ext4 seen from qemu-user, NFS,
# XFS), and lseek cannot pass 2 GiB of spool. No effect on 64-bit targets or
# musl, whose off_t is always 64-bit. Only this project's own objects see
# off_t in shared structures, so the Debian libraries' ABI is untouched.
# time_t stays as the target's C library has it (_TIME_BITS=64 would change
# the layout of mbedTLS's session structure against Debian 12's armhf build).
target_compile_definitions(tether_options INTERFACE $<BUILD_INTERFACE:_FILE_OFFSET_BITS=64>)

if(TETHER_WERROR)
    target_compile_options(tether_options INTERFACE $<BUILD_INTERFACE:-Werror>)
endif()

if(TETHER_EMBEDDED)
    target_compile_options(tether_options INTERFACE
        $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
    target_compile_definitions(tether_options INTERFACE TETHER_EMBEDDED=1)
endif()

# The shipped build (embedded, size-optimised): every function and object in its
# own section, so the linker drops whatever an executable never references.
# Link options on this interface library reach only what links it: executables
# (static libraries are archived, not linked).
set(tether_size_build $<OR:$<BOOL:${TETHER_EMBEDDED}>,$<CONFIG:MinSizeRel>>)
target_compile_options(tether_options INTERFACE
    $<${tether_size_build}:-ffunction-sections -fdata-sections>)
target_link_options(tether_options INTERFACE $<${tether_size_build}:-Wl,--gc-sections>)

if(TETHER_COVERAGE)
    target_compile_options(tether_options INTERFACE $<BUILD_INTERFACE:--coverage -O0 -g>)
    target_link_options(tether_options INTERFACE $<BUILD_INTERFACE:--coverage>)
endif()

# Sanitizer builds (make test-asan): every target, tests included, runs under
# ASan and UBSan, and the first report aborts the test that caused it. The
# test support then counts allocations through the sanitizer's allocator hooks
# instead of interposing malloc (see tests/support/alloc_counter.cpp).
if(TETHER_SANITIZE)
    target_compile_options(tether_options INTERFACE
        -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(tether_options INTERFACE -fsanitize=address,undefined)
    target_compile_definitions(tether_options INTERFACE TETHER_SANITIZE=1)
endif()

# Fuzzing builds (make fuzz): the libraries get libFuzzer's coverage
# instrumentation plus ASan and UBSan; tests/fuzz links the fuzzer's main.
if(TETHER_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
        message(FATAL_ERROR "tether: TETHER_FUZZ needs clang (CXX=clang++-14); run 'tools/install-deps fuzz'")
    endif()
    target_compile_options(tether_options INTERFACE
        -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer)
    target_link_options(tether_options INTERFACE -fsanitize=address,undefined)
endif()

# SPDX-License-Identifier: MIT
# Cross build for aarch64-linux-gnu with Debian's cross compiler and the target's
# libraries from Debian multiarch (dpkg --add-architecture; lib*-dev:<arch>).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Multiarch keeps target libraries in /usr/lib/aarch64-linux-gnu and shares /usr/include;
# never pick up a host program or library by mistake.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs the target's test binaries under qemu-user, with the multiarch
# loader and libraries as the target system has them (/lib/ld-linux-*.so.*,
# /usr/lib/aarch64-linux-gnu, all from the same libc6:<arch>), hence the root as
# qemu's prefix. /usr/aarch64-linux-gnu would pair the cross package's ld.so
# with multiarch's libc.so.6: two glibc builds whose private interfaces
# differ, which crashes in pthread_create.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/)

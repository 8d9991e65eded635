# Compile options shared by every tether target. Targets link tether::options
# instead of the build setting global flags, so a consumer's flags stay untouched.
add_library(tether_options INTERFACE)
add_library(tether::options ALIAS tether_options)

target_compile_features(tether_options INTERFACE cxx_std_17)
target_compile_options(tether_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wshadow -Wconversion -Wsign-conversion
                              -Wnon-virtual-dtor -Wold-style-cast>
    $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra>)
if(TETHER_WERROR)
    target_compile_options(tether_options INTERFACE -Werror)
endif()

if(TETHER_EMBEDDED)
    target_compile_options(tether_options INTERFACE
        $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
    target_compile_definitions(tether_options INTERFACE TETHER_EMBEDDED=1)
endif()

if(TETHER_COVERAGE)
    target_compile_options(tether_options INTERFACE --coverage -O0 -g)
    target_link_options(tether_options INTERFACE --coverage)
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

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

# The shipped build (embedded, size-optimised): every function and object in its
# own section, so the linker drops whatever an executable never references.
# Link options on this interface library reach only what links it: executables
# (static libraries are archived, not linked).
set(tether_size_build $<OR:$<BOOL:${TETHER_EMBEDDED}>,$<CONFIG:MinSizeRel>>)
target_compile_options(tether_options INTERFACE
    $<${tether_size_build}:-ffunction-sections -fdata-sections>)
target_link_options(tether_options INTERFACE $<${tether_size_build}:-Wl,--gc-sections>)

if(TETHER_COVERAGE)
    target_compile_options(tether_options INTERFACE --coverage -O0 -g)
    target_link_options(tether_options INTERFACE --coverage)
endif()

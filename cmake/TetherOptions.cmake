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
if(TETHER_WERROR)
    target_compile_options(tether_options INTERFACE $<BUILD_INTERFACE:-Werror>)
endif()

if(TETHER_EMBEDDED)
    target_compile_options(tether_options INTERFACE
        $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
    target_compile_definitions(tether_options INTERFACE TETHER_EMBEDDED=1)
endif()

if(TETHER_COVERAGE)
    target_compile_options(tether_options INTERFACE $<BUILD_INTERFACE:--coverage -O0 -g>)
    target_link_options(tether_options INTERFACE $<BUILD_INTERFACE:--coverage>)
endif()

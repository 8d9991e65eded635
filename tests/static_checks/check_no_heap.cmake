# SPDX-License-Identifier: MIT
# Fails when the library references any allocator entry point.
execute_process(COMMAND ${NM} --undefined-only --demangle ${LIBRARY}
    OUTPUT_VARIABLE symbols RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "nm failed on ${LIBRARY}")
endif()
string(REGEX MATCHALL "[^\n]*(malloc|calloc|realloc|posix_memalign|aligned_alloc|operator new|__cxa_allocate_exception)[^\n]*"
    found "${symbols}")
# ASan's fake stack frames (__asan_stack_malloc_N, detect_stack_use_after_return)
# are stack memory, not the heap: sanitizer builds reference them everywhere.
list(FILTER found EXCLUDE REGEX "__asan_stack_malloc")
if(found)
    string(REPLACE ";" "\n" found "${found}")
    message(FATAL_ERROR "heap allocation referenced by ${LIBRARY}:\n${found}")
endif()
message(STATUS "no heap allocation referenced by ${LIBRARY}")

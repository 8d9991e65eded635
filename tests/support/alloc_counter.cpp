// SPDX-License-Identifier: MIT
#include "support/alloc_counter.h"

#include <atomic>
#include <cstddef>

#if defined(TETHER_SANITIZE)
// Sanitizer builds (TETHER_SANITIZE=ON): ASan owns malloc, and interposing it
// would bypass ASan's allocator. Allocations are counted through the
// allocator's own hook instead, which sees malloc, calloc, realloc, aligned
// allocations and operator new alike, so the counting tests still run.
// Declared here (from sanitizer/allocator_interface.h, which Debian ships
// with clang's runtime but not with gcc's) so gcc builds need no extra package.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));

namespace {
std::atomic<std::size_t> g_allocations{0};

void count_allocation(const volatile void*, std::size_t) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
}
void ignore_free(const volatile void*) {}

// Installed before main(), like the interposed functions below.
const int g_hooks_installed =
    __sanitizer_install_malloc_and_free_hooks(count_allocation, ignore_free);
}  // namespace

#else
// glibc exports its allocator under __libc_* names, so the test binary can
// define malloc itself (interposing it for every shared library too) and
// still forward to the real one. Test-only: src/ must not rely on glibc.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* pointer, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* pointer);
}

namespace {
std::atomic<std::size_t> g_allocations{0};
}

extern "C" {
void* malloc(std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(count, size);
}
void* realloc(void* pointer, std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(pointer, size);
}
void* memalign(std::size_t alignment, std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    void* pointer = __libc_memalign(alignment, size);
    if (pointer == nullptr) {
        return 12;  // ENOMEM
    }
    *out = pointer;
    return 0;
}
void free(void* pointer) {
    __libc_free(pointer);
}
}
#endif  // TETHER_SANITIZE

namespace tether::test {

AllocationCounter::AllocationCounter() : start_(g_allocations.load()) {
#if defined(TETHER_SANITIZE)
    (void)g_hooks_installed;
#endif
}
AllocationCounter::~AllocationCounter() = default;
std::size_t AllocationCounter::count() const {
    return g_allocations.load() - start_;
}

}  // namespace tether::test

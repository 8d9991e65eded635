#include "support/alloc_counter.h"

#include <atomic>
#include <cstddef>

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

namespace tether::test {

AllocationCounter::AllocationCounter() : start_(g_allocations.load()) {}
AllocationCounter::~AllocationCounter() = default;
std::size_t AllocationCounter::count() const {
    return g_allocations.load() - start_;
}

}  // namespace tether::test

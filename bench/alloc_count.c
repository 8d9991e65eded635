// SPDX-License-Identifier: MIT
/* tether-bench-alloc-count: an LD_PRELOAD library that counts heap
 * allocations of whatever process it is loaded into (make bench compares the
 * senders' allocations per message with it).
 *
 * Counted: every call to malloc, calloc, realloc, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc (operator new reaches malloc),
 * and the bytes each asked for. free is not interposed. At exit the process
 * appends `pid=P allocs=N bytes=B` to the file named by
 * TETHER_ALLOC_COUNT_FILE (nothing when it is unset).
 *
 * The real work is glibc's __libc_* entry points, which never call back into
 * these definitions, so nothing recurses and no dlsym bootstrap is needed.
 * This is bench tooling for glibc hosts, not library code. The counters are
 * relaxed atomics: Python and Node allocate from several threads. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t count, size_t size);
extern void* __libc_realloc(void* pointer, size_t size);
extern void* __libc_memalign(size_t alignment, size_t size);
extern void* __libc_valloc(size_t size);
extern void* __libc_pvalloc(size_t size);

static atomic_ullong allocations;
static atomic_ullong bytes_requested;

static void count(size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes_requested, size, memory_order_relaxed);
}

#define EXPORTED __attribute__((visibility("default")))

EXPORTED void* malloc(size_t size) {
    count(size);
    return __libc_malloc(size);
}

EXPORTED void* calloc(size_t count_, size_t size) {
    count(count_ * size);
    return __libc_calloc(count_, size);
}

EXPORTED void* realloc(void* pointer, size_t size) {
    count(size);
    return __libc_realloc(pointer, size);
}

EXPORTED void* memalign(size_t alignment, size_t size) {
    count(size);
    return __libc_memalign(alignment, size);
}

EXPORTED void* aligned_alloc(size_t alignment, size_t size) {
    count(size);
    return __libc_memalign(alignment, size);
}

EXPORTED int posix_memalign(void** out, size_t alignment, size_t size) {
    count(size);
    if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) {
        return EINVAL;
    }
    void* pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) {
        return ENOMEM;
    }
    *out = pointer;
    return 0;
}

EXPORTED void* valloc(size_t size) {
    count(size);
    return __libc_valloc(size);
}

EXPORTED void* pvalloc(size_t size) {
    count(size);
    return __libc_pvalloc(size);
}

/* Decimal without stdio: snprintf may allocate, and this runs at exit. */
static char* put_number(char* at, unsigned long long value) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) {
        *at++ = digits[--n];
    }
    return at;
}

static char* put_text(char* at, const char* text) {
    while (*text != '\0') {
        *at++ = *text++;
    }
    return at;
}

__attribute__((destructor)) static void report(void) {
    const char* path = getenv("TETHER_ALLOC_COUNT_FILE");
    if (path == NULL || *path == '\0') {
        return;
    }
    char line[96];
    char* at = put_text(line, "pid=");
    at = put_number(at, (unsigned long long)getpid());
    at = put_text(at, " allocs=");
    at = put_number(at, atomic_load(&allocations));
    at = put_text(at, " bytes=");
    at = put_number(at, atomic_load(&bytes_requested));
    *at++ = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        return;
    }
    /* One write of a short line to an O_APPEND file: lines of processes
     * exiting together do not interleave. */
    ssize_t written = write(fd, line, (size_t)(at - line));
    (void)written;
    close(fd);
}

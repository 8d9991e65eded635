// SPDX-License-Identifier: MIT
#include "support/syscall_faults.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr unsigned kSyscallCount = 4;

struct Armed {
    unsigned failures = 0;
    int error_number = 0;
    unsigned calls = 0;
};

Armed g_armed[kSyscallCount];
bool g_stall_next_write = false;
bool g_pretend_fsync = false;
std::size_t g_transfer_limit = 0;
bool g_pretend_euid = false;
uid_t g_euid = 0;

Armed& armed(tether::test::Syscall call) {
    return g_armed[static_cast<unsigned>(call)];
}

void clear_all() {
    for (Armed& entry : g_armed) {
        entry = Armed{};
    }
    g_stall_next_write = false;
    g_pretend_fsync = false;
    g_transfer_limit = 0;
    g_pretend_euid = false;
}

// Counts the call and reports whether it should fail now (errno set).
bool should_fail(tether::test::Syscall call) {
    Armed& entry = armed(call);
    ++entry.calls;
    if (entry.failures == 0) {
        return false;
    }
    --entry.failures;
    errno = entry.error_number;
    return true;
}

std::size_t limited(std::size_t count) {
    return g_transfer_limit != 0 && count > g_transfer_limit ? g_transfer_limit : count;
}

template <typename Function>
Function next_definition(const char* name) {
    void* symbol = ::dlsym(RTLD_NEXT, name);
    if (symbol == nullptr) {
        std::fprintf(stderr, "syscall_faults: no %s after the test binary\n", name);
        std::abort();
    }
    return reinterpret_cast<Function>(symbol);
}

using PreadFunction = ssize_t (*)(int, void*, std::size_t, off_t);
using PwriteFunction = ssize_t (*)(int, const void*, std::size_t, off_t);
using FsyncFunction = int (*)(int);
using FchmodFunction = int (*)(int, mode_t);
using GeteuidFunction = uid_t (*)();

}  // namespace

// unistd.h may rename pread and pwrite (to pread64 and pwrite64 when off_t is
// 64 bits on a 32-bit target); the definitions below follow that renaming, so
// the symbol looked up must too.
#if defined(__USE_FILE_OFFSET64) && !defined(__LP64__)
#define TETHER_PREAD_SYMBOL "pread64"
#define TETHER_PWRITE_SYMBOL "pwrite64"
#else
#define TETHER_PREAD_SYMBOL "pread"
#define TETHER_PWRITE_SYMBOL "pwrite"
#endif

extern "C" {

ssize_t pread(int fd, void* buffer, std::size_t count, off_t offset) {
    static const auto real = next_definition<PreadFunction>(TETHER_PREAD_SYMBOL);
    if (should_fail(tether::test::Syscall::kPread)) {
        return -1;
    }
    return real(fd, buffer, limited(count), offset);
}

ssize_t pwrite(int fd, const void* buffer, std::size_t count, off_t offset) {
    static const auto real = next_definition<PwriteFunction>(TETHER_PWRITE_SYMBOL);
    if (should_fail(tether::test::Syscall::kPwrite)) {
        return -1;
    }
    if (g_stall_next_write) {
        g_stall_next_write = false;
        return 0;
    }
    return real(fd, buffer, limited(count), offset);
}

int fsync(int fd) {
    static const auto real = next_definition<FsyncFunction>("fsync");
    if (should_fail(tether::test::Syscall::kFsync)) {
        return -1;
    }
    return g_pretend_fsync ? 0 : real(fd);
}

int fchmod(int fd, mode_t mode) noexcept {
    static const auto real = next_definition<FchmodFunction>("fchmod");
    if (should_fail(tether::test::Syscall::kFchmod)) {
        return -1;
    }
    return real(fd, mode);
}

uid_t geteuid() noexcept {
    static const auto real = next_definition<GeteuidFunction>("geteuid");
    return g_pretend_euid ? g_euid : real();
}

}  // extern "C"

namespace tether::test {

SyscallFaults::SyscallFaults() {
    clear_all();
}

SyscallFaults::~SyscallFaults() {
    clear_all();
}

void SyscallFaults::fail(Syscall call, int error_number, unsigned times) {
    armed(call).failures = times;
    armed(call).error_number = error_number;
}

void SyscallFaults::stall_next_write() {
    g_stall_next_write = true;
}

void SyscallFaults::limit_transfers(std::size_t max_bytes) {
    g_transfer_limit = max_bytes;
}

void SyscallFaults::pretend_euid(uid_t uid) {
    g_euid = uid;
    g_pretend_euid = true;
}

void SyscallFaults::pretend_fsync() {
    g_pretend_fsync = true;
}

unsigned SyscallFaults::calls(Syscall call) const {
    return armed(call).calls;
}

}  // namespace tether::test
